"""Runtime configuration, read once from the environment (no prefix: `DATABASE_URL`, `PORT`...).

`database_url` is the connection the *server* uses and must log in as the non-owner app role
(`paysheet_app`); migrations use `migration_database_url` (the owner role, or a superuser that
may `SET ROLE paysheet_owner`). With no `database_url` the CLI starts the embedded PostgreSQL
under `data_dir` and fills both in.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

OWNER_ROLE = "paysheet_owner"
APP_ROLE = "paysheet_app"


class Settings(BaseSettings):
    """Every knob of the server in one place; tests build their own instance."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str | None = None
    migration_database_url: str | None = None
    data_dir: Path = Path("./.paysheet")
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None

    token_ttl_hours: int = 12
    # This server's public URL (scheme://host[:port]) when it sits behind a proxy: the OIDC
    # redirect URI is built from it. Unset: from each request's own URL.
    public_base_url: str | None = None
    # Accounts: a one-time password (new user, admin reset) expires after this and works
    # once; new passwords need this many characters; an account locks after
    # `login_lockout_threshold` wrong passwords in a row for base x 2^n seconds (capped), a
    # client address after `login_address_threshold` failures within the window.
    one_time_password_hours: int = 72
    # With REDIS_URL, sessions live in Redis; each is re-checked against Postgres at least
    # this often (changes made outside the API are seen within it).
    session_recheck_seconds: int = 60
    # Each API process keeps resolved tokens this long (0: off); API-made changes reach
    # every process at once (LISTEN/NOTIFY), changes made in SQL within this bound.
    session_cache_seconds: float = 10.0
    password_min_length: int = 12
    login_lockout_threshold: int = 5
    login_lockout_base_seconds: int = 30
    login_lockout_cap_seconds: int = 3600
    login_address_threshold: int = 20
    login_address_window_seconds: int = 900
    # Default per-tenant size limit of one upload (tenants.metadata.upload_limit_bytes wins).
    max_upload_bytes: int = 1024 * 1024 * 1024
    # ClamAV: a unix socket path or host:port of clamd; unset: files are "not scanned".
    clamd_socket: str | None = None
    clamd_timeout_seconds: float = 120.0
    # Write endpoints (POST/PUT/PATCH/DELETE): a token bucket per client refilled at this rate.
    rate_limit_per_minute: int = 300
    rate_limit_burst: int = 60
    # OIDC sign-in routes (`/auth/oidc/.../login`, `/auth/oidc/callback`): a token bucket per
    # client address, GETs included (each starts or finishes a round trip to the provider).
    sign_in_rate_limit_per_minute: int = 30
    sign_in_rate_limit_burst: int = 10

    # Argon2id cost of new password hashes (tests lower it; verification reads each hash's own).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    # A pooled connection idle longer than `db_ping_idle_seconds` is tested (one round trip)
    # before use, so a database restart during a quiet spell costs no request; busy
    # connections are not (`db_pool_pre_ping` tests every checkout: a round trip each).
    db_pool_size: int = 20
    db_max_overflow: int = 20
    db_pool_pre_ping: bool = False
    db_ping_idle_seconds: float = 10.0
    # `paysheet serve` freezes what start-up allocated out of the garbage collector's reach
    # (gc.freeze): a full collection then walks only what requests allocate, not the
    # hundreds of thousands of objects of imports and the app, which cut the read mix's
    # tail latency (docs/operations.md). Off for apps built in tests (many per process).
    gc_freeze_at_start: bool = False
    # Password of the two roles when the embedded bootstrap creates them; unset: a random
    # secret kept in <data_dir>/pg-roles.secret (the embedded server requires SCRAM).
    bootstrap_role_password: str | None = None

    # Encrypts tenants' export-signing private keys at rest (any long random string). Unset:
    # a random secret is created once in <data_dir>/signing-key.secret (mode 0600).
    signing_key_secret: str | None = None

    # Audit chain: HMAC keys as `id:base64,id:base64` (unset: <data_dir>/audit-keys.json,
    # created on first use), the active one (default: the last listed), and how many events
    # of a tenant between two signed checkpoints of its chain head.
    audit_keys: str | None = None
    audit_active_key: str | None = None
    audit_checkpoint_every: int = 100

    # PII field-level encryption (server/modules/keys): the KMS wrapping each tenant's data
    # keys, `local` (a key file, PII_KEY_FILE, default <data_dir>/pii-keys.json, created
    # with mode 0600) or `package.module:Class` (a cloud KMS adapter, see keys/kms.py).
    pii_kms: str = "local"
    pii_key_file: Path | None = None

    # Runs: the job queue's name (RedisHuey key prefix / PostgresHuey queue column), how many
    # times a run interrupted by a dead worker is attempted, and `paysheet worker` processes.
    queue_name: str = "paysheet"
    run_max_attempts: int = 2
    worker_processes: int = 2
    # Threads of the in-process consumer `paysheet serve` runs; unset: 1 with the embedded
    # database, 0 with DATABASE_URL (run `paysheet worker` processes instead).
    embedded_workers: int | None = None

    # API processes of `paysheet serve` (uvicorn workers); unset: 1 with the embedded
    # database, else one per CPU (at most 4). One process runs Python on one core at a time.
    api_workers: int | None = None
    # SIGTERM/SIGINT: seconds uvicorn waits for open requests, and the in-process consumer
    # for a running task, before they are cut (an interrupted run is recovered at next start).
    shutdown_grace_seconds: float = 10.0
    # Prometheus HTTP API the error-budget report (`paysheet slo report`) reads.
    prometheus_url: str = "http://127.0.0.1:9090"

    log_level: str = "INFO"
    log_json: bool = True

    # Statement delivery to managers by e-mail (reports/delivery.py). Unset SMTP_HOST: no
    # e-mail (managers download their teams' statements through the API). SMTP_TLS: none,
    # starttls or ssl. DELIVER_ON_FINALIZE: queue a delivery when a run is finalized.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_tls: str = "none"
    smtp_sender: str = "paysheet@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 30.0
    deliver_on_finalize: bool = True


def api_worker_count(settings: Settings, embedded_database: bool) -> int:
    """How many API processes `paysheet serve` starts (API_WORKERS, else the default above)."""
    if settings.api_workers is not None:
        return max(1, settings.api_workers)
    return 1 if embedded_database else max(1, min(os.cpu_count() or 1, 4))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
