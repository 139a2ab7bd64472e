"""Uploads: mapping presets, validation problems, upload mapping columns.

Revision ID: 0010
Revises: 0001
Create Date: 2026-11-28

`comp.mapping_presets` keeps a tenant's named column mappings (`{input_key: column}`) with
the normalised headers they were saved from, so suggestions can recognise a file layout.
`comp.upload_problems` holds the validation report's entries (one per problem, capped per
upload by the service; the summary counts on `uploads.metadata` are always complete).
Both tables have RLS enabled and FORCED like every tenant table in 0001.
"""

from alembic import op

from migrations.rls import DML, enable_rls

revision = "0010"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = """
alter table comp.uploads
  add column mapping jsonb,
  add column plan_id uuid,
  add column error text,
  add column updated_at timestamptz not null default now(),
  add foreign key (tenant_id, plan_id) references comp.bonus_plans (tenant_id, id)
    on delete set null (plan_id);
create index uploads_tenant_created_idx on comp.uploads (tenant_id, created_at desc);

create table comp.mapping_presets (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  name text not null check (length(trim(name)) between 1 and 200),
  kind text not null check (kind in ('employees','funds')),
  mapping jsonb not null check (jsonb_typeof(mapping) = 'object'),
  headers jsonb not null default '[]',
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, name),
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id)
);

create table comp.upload_problems (
  upload_id uuid not null,
  tenant_id uuid not null,
  seq int not null,
  file_row int,
  column_name text,
  input_key text,
  value text,
  rule jsonb not null,
  message text not null,
  hint text not null,
  primary key (upload_id, seq),
  foreign key (tenant_id, upload_id) references comp.uploads (tenant_id, id) on delete cascade
);
"""


def upgrade() -> None:
    op.execute(TABLES)
    for table in ("mapping_presets", "upload_problems"):
        op.execute(enable_rls(table, grant=DML))


def downgrade() -> None:
    op.execute("drop table if exists comp.upload_problems, comp.mapping_presets")
    op.execute(
        "alter table comp.uploads drop column if exists mapping, drop column if exists plan_id, "
        "drop column if exists error, drop column if exists updated_at"
    )
    op.execute("drop index if exists comp.uploads_tenant_created_idx")
