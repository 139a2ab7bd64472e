"""Account policies: one-time passwords that expire and work once, lockout with backoff.

Revision ID: 0081
Revises: 0080
Create Date: 2026-12-07

`comp.users` gains `password_is_temporary` (a one-time password set by an admin: the first
login consumes it), `password_expires_at`, `failed_logins` and `locked_until` (per-account
lockout with exponential backoff). Existing users keep their passwords as permanent ones.
`comp.auth_login_state(email)` is the login lookup with those fields, SECURITY DEFINER like
`auth_login_candidates` (login happens before a tenant is known), so a locked account is
refused before any password hash is computed; `auth_login_failed` / `auth_login_succeeded`
keep the counters and consume a one-time password.
"""

from alembic import op

from migrations.rls import APP

revision = "0081"
down_revision = "0080"
branch_labels = None
depends_on = None

UPGRADE = f"""
alter table comp.users add column password_is_temporary boolean not null default false;
alter table comp.users add column password_expires_at timestamptz;
alter table comp.users add column failed_logins int not null default 0
  check (failed_logins >= 0);
alter table comp.users add column locked_until timestamptz;

create function comp.auth_login_state(p_email text)
returns table (user_id uuid, tenant_id uuid, password_hash text, is_temporary boolean,
               expires_at timestamptz, failed_logins int, locked_until timestamptz)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.id, u.tenant_id, u.password_hash, u.password_is_temporary, u.password_expires_at,
         u.failed_logins, u.locked_until
    from comp.users u join comp.tenants t on t.id = u.tenant_id
   where u.email = lower(p_email) and u.is_active and t.is_active
     and u.password_hash is not null
   order by t.created_at, t.id
$$;
revoke all on function comp.auth_login_state(text) from public;
grant execute on function comp.auth_login_state(text) to {APP};

-- A wrong password: count it; from the threshold on, lock with a doubling delay (capped).
create function comp.auth_login_failed(p_user uuid, p_threshold int, p_base_seconds int,
                                       p_cap_seconds int)
returns timestamptz
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  update comp.users set failed_logins = failed_logins + 1,
         locked_until = case when failed_logins + 1 >= p_threshold
           then now() + make_interval(secs => least(
                  p_base_seconds * power(2, least(failed_logins + 1 - p_threshold, 20)),
                  p_cap_seconds))
           else locked_until end
   where id = p_user
  returning locked_until
$$;

-- A right password: reset the counters; a one-time password is consumed (single use: the
-- hash must still be the one verified, so of two concurrent logins only one wins).
create function comp.auth_login_succeeded(p_user uuid, p_verified_hash text)
returns boolean
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  update comp.users set failed_logins = 0, locked_until = null,
         password_hash = case when password_is_temporary then null else password_hash end
   where id = p_user and password_hash = p_verified_hash
  returning true
$$;
-- Token resolution with the expiry, for the Redis session's TTL.
create function comp.auth_resolve_session(p_token_hash text)
returns table (token_id uuid, user_id uuid, tenant_id uuid, role text, email text,
               display_name text, teams text[], expires_at timestamptz)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select k.id, u.id, u.tenant_id, u.role, u.email, u.display_name, u.teams, k.expires_at
    from comp.api_tokens k
    join comp.users u on u.id = k.user_id and u.tenant_id = k.tenant_id
    join comp.tenants t on t.id = u.tenant_id
   where k.token_hash = p_token_hash and k.revoked_at is null and k.expires_at > now()
     and u.is_active and t.is_active
$$;
revoke all on function comp.auth_resolve_session(text) from public;
grant execute on function comp.auth_resolve_session(text) to {APP};
revoke all on function comp.auth_login_failed(uuid, int, int, int) from public;
revoke all on function comp.auth_login_succeeded(uuid, text) from public;
grant execute on function comp.auth_login_failed(uuid, int, int, int) to {APP};
grant execute on function comp.auth_login_succeeded(uuid, text) to {APP};
"""

DOWNGRADE = """
drop function if exists comp.auth_login_state(text);
drop function if exists comp.auth_login_failed(uuid, int, int, int);
drop function if exists comp.auth_login_succeeded(uuid, text);
drop function if exists comp.auth_resolve_session(text);
alter table comp.users drop column locked_until, drop column failed_logins,
  drop column password_expires_at, drop column password_is_temporary;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
