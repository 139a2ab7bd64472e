"""Reports: per-tenant Ed25519 signing keys for export bundles; bulk statement jobs.

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-28

`comp.tenant_signing_keys` holds one active key per tenant (older keys stay, retired, so
bundles signed with them can still be checked). The public key is stored raw (32 bytes); the
private key only as AES-256-GCM ciphertext under a key derived from the server secret
(`SIGNING_KEY_SECRET`, else `<data_dir>/signing-key.secret`), never in clear. RLS is
enabled and FORCED like every tenant table; the app role may insert and retire keys but
never delete them. `comp.report_jobs` tracks bulk statement jobs run on the worker (status,
progress, the zip's path under the data directory and its SHA-256).
"""

from alembic import op

from migrations.rls import APP, enable_rls

revision = "0030"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLES = """
create table comp.tenant_signing_keys (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  key_id text not null check (key_id ~ '^[0-9a-f]{16}$'),
  algorithm text not null default 'Ed25519' check (algorithm = 'Ed25519'),
  public_key bytea not null check (length(public_key) = 32),
  private_key_ciphertext bytea not null,
  private_key_nonce bytea not null check (length(private_key_nonce) = 12),
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  unique (tenant_id, key_id)
);
create unique index tenant_signing_keys_active_idx
  on comp.tenant_signing_keys (tenant_id) where retired_at is null;

create table comp.report_jobs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  run_id uuid not null,
  kind text not null check (kind in ('statements')),
  status text not null check (status in ('queued','running','done','failed')),
  params jsonb not null default '{}',
  progress jsonb not null default '{}',
  result_path text,
  result_sha256 text,
  error text,
  created_by uuid,
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete cascade,
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id)
);
create index report_jobs_tenant_run_idx on comp.report_jobs (tenant_id, run_id);
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(enable_rls("report_jobs", grant="select, insert, update"))
    # keys are retired, never changed otherwise nor deleted
    op.execute(enable_rls("tenant_signing_keys", grant="select, insert"))
    op.execute(f"grant update (retired_at) on comp.tenant_signing_keys to {APP}")


def downgrade() -> None:
    op.execute("drop table if exists comp.report_jobs, comp.tenant_signing_keys")
