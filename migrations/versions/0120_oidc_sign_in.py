"""OIDC sign-in: per-tenant identity provider settings, pending sign-ins, linked subjects.

Revision ID: 0120
Revises: 0060
Create Date: 2026-12-07

- `comp.oidc_providers`: one identity provider per tenant (issuer, client id, the client
  secret only as AES-256-GCM ciphertext under the server secret, scopes) and the mapping of
  its groups claim to Paysheet roles and manager teams.
- `comp.oidc_logins`: sign-ins under way. The row is keyed by the SHA-256 of the `state` the
  browser carries and holds the PKCE verifier and the nonce; the callback deletes it, so a
  state (and the code that came with it) is accepted once.
- `comp.oidc_sessions`: the ID token behind a bearer token issued by an OIDC sign-in, the
  `id_token_hint` of RP-initiated logout.
- `comp.users.oidc_subject`: the provider's `sub` a user is linked to (unique per tenant).

RLS is enabled and FORCED on the new tables like on every tenant table. Existing rows are
untouched (no provider configured: local sign-in only), so it runs forward on data.
"""

from alembic import op

from migrations.rls import DML, enable_rls

revision = "0120"
down_revision = "0060"
branch_labels = None
depends_on = None

TABLES = """
create table comp.oidc_providers (
  tenant_id uuid primary key references comp.tenants(id) on delete cascade,
  display_name text not null check (length(display_name) between 1 and 80),
  issuer text not null check (issuer ~ '^https?://'),
  client_id text not null check (length(client_id) between 1 and 255),
  client_secret_ciphertext bytea,
  client_secret_nonce bytea check (length(client_secret_nonce) = 12),
  scopes text not null default 'openid email profile',
  enabled boolean not null default true,
  jit_provisioning boolean not null default true,
  groups_claim text not null default 'groups',
  role_mapping jsonb not null default '{}',
  team_mapping jsonb not null default '{}',
  default_role text check (default_role in ('admin','hr','manager','finance','auditor','readonly')),
  updated_at timestamptz not null default now()
);

create table comp.oidc_logins (
  state_hash text primary key check (state_hash ~ '^[0-9a-f]{64}$'),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  code_verifier text not null,
  nonce text not null,
  return_to text check (return_to in ('addin')),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index oidc_logins_tenant_expiry_idx on comp.oidc_logins (tenant_id, expires_at);

create table comp.oidc_sessions (
  token_id uuid primary key references comp.api_tokens(id) on delete cascade,
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  id_token text not null,
  created_at timestamptz not null default now()
);

alter table comp.users add column oidc_subject text;
create unique index users_oidc_subject_idx on comp.users (tenant_id, oidc_subject)
  where oidc_subject is not null;
"""


# What the app role may do: sign-ins under way are created and consumed, never changed; a
# session's ID token is written once.
GRANTS = {"oidc_providers": DML, "oidc_logins": "select, insert, delete",
          "oidc_sessions": "select, insert"}


def upgrade() -> None:
    op.execute(TABLES)
    for table, grant in GRANTS.items():
        op.execute(enable_rls(table, grant=grant))


def downgrade() -> None:
    op.execute("drop index if exists comp.users_oidc_subject_idx")
    op.execute("alter table comp.users drop column if exists oidc_subject")
    for table in ("oidc_sessions", "oidc_logins", "oidc_providers"):
        op.execute(f"drop table if exists comp.{table}")
