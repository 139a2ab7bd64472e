"""PII field-level encryption: per-tenant data keys and the catalog's `sensitive` flag.

Revision ID: 0130
Revises: 0120
Create Date: 2026-12-08

- `comp.tenant_data_keys`: each tenant's 256-bit data keys, one row per version, stored only
  wrapped by a KMS key-encryption key (`kek_id` names the KEK version that wrapped it). The
  app role may read, create and rewrap keys, never delete them (a deleted key would make
  everything it encrypted unreadable). RLS FORCED like on every tenant table.
- `comp.input_catalog.sensitive`: inputs whose values are encrypted wherever the database
  stores them (employee rows, validation problems and warning samples). Existing entries
  get the default rule: dates, and keys or labels that name pay, names or contact details.

Existing rows are encrypted by revision 0131 (it needs the KMS).
"""

from alembic import op

revision = "0130"
down_revision = "0120"
branch_labels = None
depends_on = None

OWNER = "paysheet_owner"
APP = "paysheet_app"

# Keep in step with catalog.service.default_sensitive.
SENSITIVE_PATTERN = ("(salary|salaries|base_pay|wage|compensation|remuneration|name|birth|"
                     "address|email|phone|national_id|passport|iban|tax_id|ssn)")

UPGRADE = f"""
create table comp.tenant_data_keys (
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  version int not null check (version >= 1),
  kek_id text not null check (length(kek_id) between 1 and 2048),
  wrapped bytea not null check (length(wrapped) between 32 and 8192),
  created_at timestamptz not null default now(),
  rewrapped_at timestamptz,
  primary key (tenant_id, version)
);
alter table comp.tenant_data_keys enable row level security;
alter table comp.tenant_data_keys force row level security;
create policy tenant_isolation on comp.tenant_data_keys
  using (tenant_id = current_setting('app.tenant_id')::uuid)
  with check (tenant_id = current_setting('app.tenant_id')::uuid);
create policy owner_maintenance on comp.tenant_data_keys to {OWNER} using (true)
  with check (true);
revoke all on comp.tenant_data_keys from {APP};
grant select, insert on comp.tenant_data_keys to {APP};
grant update (kek_id, wrapped, rewrapped_at) on comp.tenant_data_keys to {APP};

-- Which tenant's data keys are wrapped by which KEK, across tenants (key rotation walks
-- them); never the wrapped keys themselves.
create function comp.data_key_wrapping()
returns table (tenant_id uuid, kek_id text, keys bigint)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select k.tenant_id, k.kek_id, count(*) from comp.tenant_data_keys k
   group by k.tenant_id, k.kek_id order by k.tenant_id, k.kek_id
$$;
revoke all on function comp.data_key_wrapping() from public;
grant execute on function comp.data_key_wrapping() to {APP};

alter table comp.input_catalog add column sensitive boolean not null default false;
update comp.input_catalog set sensitive = true
 where dtype = 'date' or lower(key) ~ '{SENSITIVE_PATTERN}'
    or lower(label) ~ '{SENSITIVE_PATTERN.replace("_", " ")}';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("alter table comp.input_catalog drop column if exists sensitive")
    op.execute("drop function if exists comp.data_key_wrapping()")
    op.execute("drop table if exists comp.tenant_data_keys")
