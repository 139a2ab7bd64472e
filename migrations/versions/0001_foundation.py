"""Foundation: schema comp, every PRD §4 table, RLS (forced), grants, guards, login functions.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Runs as `paysheet_owner` (see env.py). The app role `paysheet_app` gets DML only; every
tenant table has RLS ENABLED and FORCED with the policy
`tenant_id = current_setting('app.tenant_id')::uuid`, which raises when the setting is unset
or empty (fail closed). The owner role keeps a maintenance policy so that migrations and the
SECURITY DEFINER login functions can see across tenants. Triggers enforce immutability that
must hold even outside the API: locked plans, finalized runs, append-only audit events.
Violations raise SQLSTATE `PS409` so services can answer 409.
"""

from alembic import op

from migrations.rls import APP, OWNER, enable_rls

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
create table comp.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(trim(name)) > 0),
  created_at timestamptz not null default now(),
  is_active boolean not null default true,
  metadata jsonb not null default '{}'
);

create table comp.users (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  email text not null check (email = lower(email) and position('@' in email) > 1),
  display_name text,
  role text not null check (role in ('admin','hr','manager','finance','auditor','readonly')),
  password_hash text,
  is_active boolean not null default true,
  teams text[] not null default '{}',
  created_at timestamptz not null default now(),
  unique (tenant_id, email),
  unique (tenant_id, id)
);
create index users_email_idx on comp.users (email);

create table comp.api_tokens (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  user_id uuid not null,
  token_hash text not null unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  foreign key (tenant_id, user_id) references comp.users (tenant_id, id) on delete cascade
);

create table comp.input_catalog (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  key text not null,
  label text not null,
  dtype text not null check (dtype in ('decimal','int','text','date','bool')),
  scope text not null default 'employee' check (scope in ('employee','fund')),
  required boolean not null default false,
  default_value jsonb,
  validation jsonb not null default '{}',
  created_at timestamptz not null default now(),
  unique (tenant_id, key),
  unique (tenant_id, id)
);

create table comp.bonus_plans (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  name text not null,
  version int not null check (version >= 1),
  status text not null default 'draft'
    check (status in ('draft','approved','locked','archived')),
  currency char(3),
  effective_from date,
  effective_to date,
  notes text,
  metadata jsonb not null default '{}',
  document jsonb,
  plan_hash text,
  previous_version_id uuid,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  locked_by uuid,
  locked_at timestamptz,
  unique (tenant_id, name, version),
  unique (tenant_id, id),
  check (effective_to is null or effective_from is null or effective_to >= effective_from),
  check (status not in ('locked','archived') or (locked_at is not null and plan_hash is not null)),
  foreign key (tenant_id, previous_version_id) references comp.bonus_plans (tenant_id, id),
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id),
  foreign key (tenant_id, locked_by) references comp.users (tenant_id, id)
);
create index bonus_plans_tenant_status_idx on comp.bonus_plans (tenant_id, status);

create table comp.plan_inputs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  plan_id uuid not null,
  input_id uuid not null,
  scope text not null default 'employee' check (scope in ('employee','fund')),
  required boolean not null default true,
  default_value jsonb,
  position int not null default 0,
  source_mapping jsonb not null default '{}',
  unique (plan_id, input_id),
  foreign key (tenant_id, plan_id) references comp.bonus_plans (tenant_id, id) on delete cascade,
  foreign key (tenant_id, input_id) references comp.input_catalog (tenant_id, id)
    on delete restrict
);

create table comp.plan_steps (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  plan_id uuid not null,
  step_order int not null,
  name text not null,
  expr text not null,
  condition_expr text,
  outputs jsonb not null default '[]',
  default_value text,
  notes text,
  constraint plan_steps_order_key unique (plan_id, step_order) deferrable initially deferred,
  constraint plan_steps_name_key unique (plan_id, name) deferrable initially deferred,
  foreign key (tenant_id, plan_id) references comp.bonus_plans (tenant_id, id) on delete cascade
);
create index plan_steps_plan_order_idx on comp.plan_steps (plan_id, step_order);

create table comp.bonus_pools (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  plan_id uuid not null,
  currency char(3) not null,
  amount numeric(38,10) not null,
  allocation_rules jsonb not null default '[]',
  created_at timestamptz not null default now(),
  foreign key (tenant_id, plan_id) references comp.bonus_plans (tenant_id, id) on delete cascade
);

create table comp.uploads (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  created_by uuid,
  filename text not null,
  kind text not null default 'employees' check (kind in ('employees','funds')),
  status text not null check (status in ('received','processing','failed','ready')),
  file_size bigint,
  sha256 text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  unique (tenant_id, id),
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id)
);

create table comp.employee_rows (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  upload_id uuid not null,
  employee_ref text not null,
  raw jsonb not null,
  created_at timestamptz not null default now(),
  foreign key (tenant_id, upload_id) references comp.uploads (tenant_id, id) on delete cascade
);
create index employee_rows_upload_idx on comp.employee_rows (upload_id);

create table comp.plan_runs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  plan_id uuid not null,
  upload_id uuid,
  scenario_name text,
  approvals_state jsonb not null default '{"state":"draft","history":[]}',
  snapshot_hash text not null,
  parameters jsonb not null default '{}',
  results_hash text,
  error text,
  progress jsonb not null default '{}',
  created_by uuid,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null check (status in ('queued','running','draft','manager_approved',
    'hr_approved','finance_approved','finalized','failed')),
  unique (tenant_id, id),
  foreign key (tenant_id, plan_id) references comp.bonus_plans (tenant_id, id)
    on delete restrict,
  foreign key (tenant_id, upload_id) references comp.uploads (tenant_id, id)
    on delete set null (upload_id),
  foreign key (tenant_id, created_by) references comp.users (tenant_id, id)
);
create index plan_runs_tenant_plan_status_idx on comp.plan_runs (tenant_id, plan_id, status);

create table comp.run_results (
  run_id uuid not null,
  tenant_id uuid not null,
  employee_ref text not null,
  "values" jsonb not null,
  diagnostics jsonb not null default '[]',
  created_at timestamptz not null default now(),
  primary key (run_id, employee_ref),
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete cascade
);

create table comp.run_totals (
  run_id uuid primary key,
  tenant_id uuid not null,
  totals jsonb not null default '{}',
  foreign key (tenant_id, run_id) references comp.plan_runs (tenant_id, id) on delete cascade
);

create table comp.audit_events (
  id bigserial primary key,
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  actor_user_id uuid,
  action text not null,
  entity text not null,
  entity_id uuid not null,
  before jsonb,
  after jsonb,
  at timestamptz not null default now(),
  request_id text,
  prev_signature text,
  signature text not null,
  foreign key (tenant_id, actor_user_id) references comp.users (tenant_id, id)
);
create index audit_events_tenant_id_idx on comp.audit_events (tenant_id, id);
create index audit_events_entity_idx on comp.audit_events (tenant_id, entity, entity_id);
create index audit_events_actor_idx on comp.audit_events (tenant_id, actor_user_id);
create index audit_events_at_idx on comp.audit_events (tenant_id, at);

-- PRD shape of per-step results, computed from one row per (run, employee).
create view comp.run_step_results with (security_invoker = true) as
select md5(r.run_id::text || '/' || r.employee_ref || '/' || s.key)::uuid as id,
       r.run_id, r.tenant_id, r.employee_ref, s.key as step_name, s.value as value,
       r.created_at
from comp.run_results r cross join lateral jsonb_each(r."values") as s(key, value);
"""

TENANT_TABLES = [
    "users",
    "api_tokens",
    "input_catalog",
    "bonus_plans",
    "plan_inputs",
    "plan_steps",
    "bonus_pools",
    "uploads",
    "employee_rows",
    "plan_runs",
    "run_results",
    "run_totals",
    "audit_events",
]


GUARDS = """
create function comp.guard_locked_plan() returns trigger language plpgsql as $$
begin
  if old.status not in ('locked', 'archived') then
    return coalesce(new, old);
  end if;
  if tg_op = 'DELETE' then
    raise exception 'plan % is %: it cannot be deleted', old.id, old.status
      using errcode = 'PS409';
  end if;
  if (to_jsonb(new) - 'status' - 'updated_at') is distinct from
     (to_jsonb(old) - 'status' - 'updated_at')
     or not (new.status = old.status or (old.status = 'locked' and new.status = 'archived')) then
    raise exception 'plan % is %: only locked -> archived may change', old.id, old.status
      using errcode = 'PS409';
  end if;
  return new;
end $$;
create trigger bonus_plans_locked_guard before update or delete on comp.bonus_plans
  for each row execute function comp.guard_locked_plan();

create function comp.guard_locked_plan_child() returns trigger language plpgsql as $$
declare
  plan_ids uuid[];
  frozen uuid;
begin
  if tg_op = 'INSERT' then plan_ids := array[new.plan_id];
  elsif tg_op = 'DELETE' then plan_ids := array[old.plan_id];
  else plan_ids := array[old.plan_id, new.plan_id];
  end if;
  select p.id into frozen from comp.bonus_plans p
   where p.id = any(plan_ids) and p.status in ('locked', 'archived') limit 1;
  if frozen is not null then
    raise exception '% of plan % cannot change: the plan is locked', tg_table_name, frozen
      using errcode = 'PS409';
  end if;
  return coalesce(new, old);
end $$;
create trigger plan_steps_locked_guard before insert or update or delete on comp.plan_steps
  for each row execute function comp.guard_locked_plan_child();
create trigger plan_inputs_locked_guard before insert or update or delete on comp.plan_inputs
  for each row execute function comp.guard_locked_plan_child();

create function comp.reject_audit_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_events is append-only: % refused', lower(tg_op) using errcode = 'PS409';
end $$;
create trigger audit_events_append_only before update or delete on comp.audit_events
  for each row execute function comp.reject_audit_change();
create trigger audit_events_no_truncate before truncate on comp.audit_events
  for each statement execute function comp.reject_audit_change();

create function comp.guard_finalized_run() returns trigger language plpgsql as $$
begin
  if old.status = 'finalized' then
    raise exception 'run % is finalized: % refused', old.id, lower(tg_op) using errcode = 'PS409';
  end if;
  return coalesce(new, old);
end $$;
create trigger plan_runs_finalized_guard before update or delete on comp.plan_runs
  for each row execute function comp.guard_finalized_run();

create function comp.guard_finalized_run_child() returns trigger language plpgsql as $$
declare
  run uuid := case when tg_op = 'DELETE' then old.run_id else new.run_id end;
begin
  if tg_op = 'UPDATE' and old.run_id <> new.run_id then
    run := old.run_id;
  end if;
  if exists (select 1 from comp.plan_runs r where r.id = run and r.status = 'finalized')
     or (tg_op = 'UPDATE' and exists (select 1 from comp.plan_runs r
                                      where r.id = new.run_id and r.status = 'finalized')) then
    raise exception '% of run % cannot change: the run is finalized', tg_table_name, run
      using errcode = 'PS409';
  end if;
  return coalesce(new, old);
end $$;
create trigger run_results_finalized_guard before insert or update or delete on comp.run_results
  for each row execute function comp.guard_finalized_run_child();
create trigger run_totals_finalized_guard before insert or update or delete on comp.run_totals
  for each row execute function comp.guard_finalized_run_child();
"""

# Login and token resolution must look across tenants before any tenant is known. They run
# as the owner (SECURITY DEFINER) and return only what authentication needs.
AUTH_FUNCTIONS = f"""
create function comp.auth_login_candidates(p_email text)
returns table (user_id uuid, tenant_id uuid, tenant_name text, password_hash text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.id, u.tenant_id, t.name, u.password_hash
    from comp.users u join comp.tenants t on t.id = u.tenant_id
   where u.email = lower(p_email) and u.is_active and t.is_active
     and u.password_hash is not null
   order by t.created_at, t.id
$$;

create function comp.auth_resolve_token(p_token_hash text)
returns table (token_id uuid, user_id uuid, tenant_id uuid, role text, email text,
               display_name text, teams text[])
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select k.id, u.id, u.tenant_id, u.role, u.email, u.display_name, u.teams
    from comp.api_tokens k
    join comp.users u on u.id = k.user_id and u.tenant_id = k.tenant_id
    join comp.tenants t on t.id = u.tenant_id
   where k.token_hash = p_token_hash and k.revoked_at is null and k.expires_at > now()
     and u.is_active and t.is_active
$$;

revoke all on function comp.auth_login_candidates(text) from public;
revoke all on function comp.auth_resolve_token(text) from public;
grant execute on function comp.auth_login_candidates(text) to {APP};
grant execute on function comp.auth_resolve_token(text) to {APP};
"""

GRANTS = f"""
revoke all on schema comp from public;
grant usage on schema comp to {APP};
grant select, insert, update, delete on all tables in schema comp to {APP};
revoke all on comp.alembic_version from {APP};
revoke update, delete, truncate on comp.audit_events from {APP};
grant usage, select on all sequences in schema comp to {APP};
alter default privileges for role {OWNER} in schema comp
  grant select, insert, update, delete on tables to {APP};
alter default privileges for role {OWNER} in schema comp
  grant usage, select on sequences to {APP};
"""


def upgrade() -> None:
    op.execute("create schema if not exists comp")
    op.execute(TABLES)
    op.execute(enable_rls("tenants", key="id"))
    for table in TENANT_TABLES:
        op.execute(enable_rls(table))
    op.execute(GUARDS)
    op.execute(AUTH_FUNCTIONS)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("drop view if exists comp.run_step_results")
    op.execute(
        "drop table if exists comp.run_totals, comp.run_results, comp.plan_runs, "
        "comp.employee_rows, comp.uploads, comp.bonus_pools, comp.plan_steps, "
        "comp.plan_inputs, comp.bonus_plans, comp.input_catalog, comp.api_tokens, "
        "comp.audit_events, comp.users, comp.tenants cascade"
    )
    for function in [
        "guard_locked_plan()",
        "guard_locked_plan_child()",
        "reject_audit_change()",
        "guard_finalized_run()",
        "guard_finalized_run_child()",
        "auth_login_candidates(text)",
        "auth_resolve_token(text)",
    ]:
        op.execute(f"drop function if exists comp.{function}")
