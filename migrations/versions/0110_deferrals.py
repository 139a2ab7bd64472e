"""Deferrals: fund NAVs, deferred awards, the append-only deferral ledger, vesting runs,
malus/clawback/leaver actions, inquiries and adjustment-run links.

Revision ID: 0110
Revises: 0071
Create Date: 2026-12-07

- `deferral_ledger` is append-only for everybody, the app role included: UPDATE, DELETE and
  TRUNCATE are revoked from `paysheet_app` AND refused by triggers (SQLSTATE PS409), so a
  correction is always a new entry. Each entry belongs to a `batch_id` whose SHA-256 is
  recorded in the audit chain (docs/deferrals.md).
- `fund_navs` are evidence as well: one NAV per fund and date, never changed.
- Every table is tenant-scoped with RLS forced, like migration 0001's tables.
"""

from alembic import op

from migrations.rls import APP, DML, enable_rls

revision = "0110"
down_revision = "0071"
branch_labels = None
depends_on = None

TABLES = """
create table comp.fund_navs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  fund_ref text not null check (length(trim(fund_ref)) > 0),
  nav_date date not null,
  nav numeric(38,10) not null check (nav > 0),
  currency char(3) not null,
  source text not null default 'api',
  created_by uuid,
  created_at timestamptz not null default now(),
  unique (tenant_id, fund_ref, nav_date)
);

create table comp.deferral_awards (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  run_id uuid not null,
  plan_id uuid not null,
  employee_ref text not null,
  award_date date not null,
  currency char(3) not null,
  variable_pay numeric(38,10) not null,
  deferred numeric(38,10) not null,
  policy jsonb not null,
  created_at timestamptz not null default now(),
  unique (tenant_id, id),
  unique (tenant_id, run_id, employee_ref),
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete restrict
);
create index deferral_awards_employee_idx on comp.deferral_awards (tenant_id, employee_ref);

create table comp.deferral_ledger (
  seq bigserial primary key,
  id uuid not null default gen_random_uuid() unique,
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  batch_id uuid not null,
  award_id uuid not null,
  employee_ref text not null,
  tranche int not null check (tranche >= 1),
  kind text not null check (kind in ('award','vest','malus','clawback','forfeit','adjustment')),
  instrument text not null check (instrument in ('cash','units')),
  fund_ref text,
  amount numeric(38,10) not null,
  units numeric(38,10),
  nav numeric(38,10),
  nav_date date,
  currency char(3) not null,
  vest_date date not null,
  retention_until date not null,
  effective_date date not null,
  source text not null,
  source_id uuid not null,
  note text,
  created_by uuid,
  created_at timestamptz not null default now(),
  check ((instrument = 'cash') = (fund_ref is null and units is null)),
  foreign key (tenant_id, award_id) references comp.deferral_awards (tenant_id, id)
);
create index deferral_ledger_award_idx on comp.deferral_ledger (tenant_id, award_id, tranche);
create index deferral_ledger_batch_idx on comp.deferral_ledger (tenant_id, batch_id);

create table comp.vesting_runs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  vest_date date not null,
  status text not null check (status in ('draft','hr_approved','finance_approved','finalized')),
  approvals_state jsonb not null default '{"history":[]}',
  lines jsonb not null default '[]',
  created_by uuid,
  created_at timestamptz not null default now(),
  finalized_at timestamptz
);

create table comp.deferral_actions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  kind text not null check (kind in ('malus','clawback','leaver')),
  award_id uuid,
  employee_ref text not null,
  tranche int,
  fraction numeric(38,10) check (fraction is null or (fraction > 0 and fraction <= 1)),
  leaver_kind text check (leaver_kind in ('good','bad')),
  effective_date date not null,
  reason text not null check (length(trim(reason)) > 0),
  evidence text,
  status text not null check (status in ('proposed','approved','applied','rejected')),
  approvals jsonb not null default '[]',
  proposed_by uuid,
  created_at timestamptz not null default now()
);

create table comp.inquiries (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  run_id uuid not null,
  employee_ref text not null,
  step text,
  input_key text,
  question text not null check (length(trim(question)) > 0),
  status text not null check (status in ('open','answered','resolved','rejected')),
  answer text,
  resolution text,
  resolved_run_id uuid,
  raised_by uuid,
  history jsonb not null default '[]',
  created_at timestamptz not null default now(),
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete cascade
);
create index inquiries_run_idx on comp.inquiries (tenant_id, run_id, status);

create table comp.adjustment_runs (
  run_id uuid primary key,
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  original_run_id uuid not null,
  reason text not null check (length(trim(reason)) > 0),
  created_by uuid,
  created_at timestamptz not null default now(),
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete cascade,
  foreign key (tenant_id, original_run_id) references comp.plan_runs (tenant_id, id)
);
"""

TENANT_TABLES = ["fund_navs", "deferral_awards", "deferral_ledger", "vesting_runs",
                 "deferral_actions", "inquiries", "adjustment_runs"]

APPEND_ONLY = f"""
create function comp.reject_ledger_change() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: % refused (write a new entry instead)',
    tg_table_name, lower(tg_op) using errcode = 'PS409';
end $$;
create trigger deferral_ledger_append_only before update or delete on comp.deferral_ledger
  for each row execute function comp.reject_ledger_change();
create trigger deferral_ledger_no_truncate before truncate on comp.deferral_ledger
  for each statement execute function comp.reject_ledger_change();
create trigger fund_navs_append_only before update or delete on comp.fund_navs
  for each row execute function comp.reject_ledger_change();
create trigger deferral_awards_append_only before update or delete on comp.deferral_awards
  for each row execute function comp.reject_ledger_change();
revoke update, delete, truncate on comp.deferral_ledger, comp.fund_navs, comp.deferral_awards
  from {APP};
"""


def upgrade() -> None:
    op.execute(TABLES)
    for table in TENANT_TABLES:
        op.execute(enable_rls(table, grant=DML))
    op.execute(f"grant usage, select on sequence comp.deferral_ledger_seq_seq to {APP}")
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.execute("drop table if exists comp.adjustment_runs, comp.inquiries, "
               "comp.deferral_actions, comp.vesting_runs, comp.deferral_ledger, "
               "comp.deferral_awards, comp.fund_navs cascade")
    op.execute("drop function if exists comp.reject_ledger_change()")
