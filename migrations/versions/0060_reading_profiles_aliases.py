"""Reading profiles saved with mapping presets; tenant-editable header aliases per input.

Revision ID: 0060
Revises: 0110
Create Date: 2026-12-07

- `comp.mapping_presets.profile`: the reading profile (decimal and thousands separators,
  date order, ...) confirmed with the mapping, applied to the next file with the same header.
- `comp.mapping_aliases`: headers a tenant declares for one of its inputs ("DOJ" feeds
  `start_date`); the mapping suggestions use them next to the built-in HR synonyms.
Runs forward on a database with data: existing presets get an empty profile.
"""

from alembic import op

from migrations.rls import DML, enable_rls

revision = "0060"
down_revision = "0110"
branch_labels = None
depends_on = None

UPGRADE = """
alter table comp.mapping_presets
  add column profile jsonb not null default '{}' check (jsonb_typeof(profile) = 'object');

create table comp.mapping_aliases (
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  input_key text not null check (length(input_key) between 1 and 63),
  alias text not null check (length(trim(alias)) between 1 and 200),
  created_by uuid,
  created_at timestamptz not null default now(),
  primary key (tenant_id, input_key, alias),
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id)
);
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute(enable_rls("mapping_aliases", grant=DML))


def downgrade() -> None:
    op.execute("drop table if exists comp.mapping_aliases")
    op.execute("alter table comp.mapping_presets drop column if exists profile")
