"""Runs: idempotency, stored snapshot, attempts, frozen approvals, the job queue tables.

Revision ID: 0020
Revises: 0010
Create Date: 2026-11-28

- `plan_runs` gains what execution and approvals need: the funds upload, the Idempotency-Key
  of the request that created it (unique per tenant) and a fingerprint of that request, the
  stored snapshot (effective plan document, mapping, data hash: what `reproduce` re-executes),
  the attempt count and the worker that holds it.
- Once a run has left execution (draft or any approval state), its snapshot hash, results
  hash, plan, uploads, parameters and snapshot cannot change; from its first approval on, its
  result rows and totals can be neither inserted, changed nor deleted either (0001 already
  freezes finalized runs entirely).
  Inserts into run_results are checked by one statement-level trigger instead of per-row
  ones (0001's per-row check cost ~0.25 ms a row: 25 s for a 100k-employee run).
- `comp.runs_in_flight()` (SECURITY DEFINER) lets the worker's recovery see running runs of
  every tenant without seeing anything else.
- Schema `queue` holds Huey's PostgresHuey tables (not tenant data: a task carries only a
  tenant id and a run id), created here so the app role needs no CREATE privilege.
"""

from alembic import op

from migrations.rls import APP

revision = "0020"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = """
alter table comp.plan_runs
  add column funds_upload_id uuid,
  add column idempotency_key text,
  add column request_fingerprint text,
  add column snapshot jsonb not null default '{}',
  add column attempts int not null default 0,
  add column worker text,
  add column execution_started_at timestamptz,
  add constraint plan_runs_funds_upload_fk foreign key (tenant_id, funds_upload_id)
    references comp.uploads (tenant_id, id) on delete set null (funds_upload_id),
  add constraint plan_runs_idempotency_key unique (tenant_id, idempotency_key);
create index plan_runs_tenant_started_idx on comp.plan_runs (tenant_id, started_at desc, id desc);
"""

GUARDS = """
create function comp.guard_computed_run() returns trigger language plpgsql as $$
begin
  if old.status in ('queued', 'running', 'failed') then
    return new;
  end if;
  if (new.snapshot_hash, new.results_hash, new.plan_id, new.upload_id, new.funds_upload_id,
      new.parameters, new.snapshot)
     is distinct from
     (old.snapshot_hash, old.results_hash, old.plan_id, old.upload_id, old.funds_upload_id,
      old.parameters, old.snapshot)
     or new.status in ('queued', 'running') then
    raise exception 'run % is %: its snapshot and results are frozen', old.id, old.status
      using errcode = 'PS409';
  end if;
  return new;
end $$;
create trigger plan_runs_computed_guard before update on comp.plan_runs
  for each row execute function comp.guard_computed_run();

create function comp.guard_computed_run_results() returns trigger language plpgsql as $$
declare
  run uuid := case when tg_op = 'INSERT' then new.run_id else old.run_id end;
  state text;
begin
  select r.status into state from comp.plan_runs r where r.id = run;
  if state in ('manager_approved', 'hr_approved', 'finance_approved', 'finalized') then
    raise exception 'results of run % cannot change: the run is %', run, state
      using errcode = 'PS409';
  end if;
  return coalesce(new, old);
end $$;

-- Inserts are checked once per statement (bulk inserts of 100k rows would otherwise pay a
-- lookup per row): no run receiving rows may be approved or finalized. This also covers
-- 0001's per-row "finalized" check for inserts, which is therefore narrowed to
-- UPDATE/DELETE on run_results.
create function comp.guard_computed_run_results_insert() returns trigger language plpgsql as $$
declare
  frozen record;
begin
  select r.id, r.status into frozen from comp.plan_runs r
   where r.id in (select distinct i.run_id from inserted i)
     and r.status in ('manager_approved', 'hr_approved', 'finance_approved', 'finalized')
   limit 1;
  if found then
    raise exception 'results of run % cannot change: the run is %', frozen.id, frozen.status
      using errcode = 'PS409';
  end if;
  return null;
end $$;

drop trigger run_results_finalized_guard on comp.run_results;
create trigger run_results_finalized_guard before update or delete on comp.run_results
  for each row execute function comp.guard_finalized_run_child();
create trigger run_results_computed_guard before update or delete
  on comp.run_results for each row execute function comp.guard_computed_run_results();
create trigger run_results_computed_insert_guard after insert on comp.run_results
  referencing new table as inserted
  for each statement execute function comp.guard_computed_run_results_insert();
create trigger run_totals_computed_guard before insert or update or delete
  on comp.run_totals for each row execute function comp.guard_computed_run_results();
"""

IN_FLIGHT = f"""
create function comp.runs_in_flight()
returns table (tenant_id uuid, run_id uuid, status text, attempts int)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select r.tenant_id, r.id, r.status, r.attempts from comp.plan_runs r
   where r.status in ('queued', 'running')
   order by r.started_at, r.id
$$;
revoke all on function comp.runs_in_flight() from public;
grant execute on function comp.runs_in_flight() to {APP};
"""

QUEUE = f"""
create schema if not exists queue;
create table queue.huey_kv (
  queue text not null, key text not null, value bytea not null, primary key (queue, key));
create table queue.huey_schedule (
  id bigserial primary key, queue text not null, data bytea not null,
  timestamp double precision not null);
create index huey_schedule_queue_timestamp on queue.huey_schedule (queue, timestamp);
create table queue.huey_task (
  id bigserial primary key, queue text not null, data bytea not null,
  priority double precision not null default 0.0);
create index huey_task_queue_priority_id on queue.huey_task (queue, priority desc, id);
create table queue.huey_counter (
  queue text not null, key text not null, value bigint not null default 0,
  primary key (queue, key));
revoke all on schema queue from public;
grant usage on schema queue to {APP};
grant select, insert, update, delete on all tables in schema queue to {APP};
grant usage, select on all sequences in schema queue to {APP};
"""


def upgrade() -> None:
    op.execute(COLUMNS)
    op.execute(GUARDS)
    op.execute(IN_FLIGHT)
    op.execute(QUEUE)


def downgrade() -> None:
    op.execute("drop schema if exists queue cascade")
    op.execute("drop function if exists comp.runs_in_flight()")
    op.execute("drop trigger if exists run_totals_computed_guard on comp.run_totals")
    op.execute("drop trigger if exists run_results_computed_guard on comp.run_results")
    op.execute("drop trigger if exists run_results_computed_insert_guard on comp.run_results")
    op.execute("drop function if exists comp.guard_computed_run_results()")
    op.execute("drop function if exists comp.guard_computed_run_results_insert()")
    op.execute("drop trigger if exists run_results_finalized_guard on comp.run_results")
    op.execute("create trigger run_results_finalized_guard before insert or update or delete "
               "on comp.run_results for each row "
               "execute function comp.guard_finalized_run_child()")
    op.execute("drop trigger if exists plan_runs_computed_guard on comp.plan_runs")
    op.execute("drop function if exists comp.guard_computed_run()")
    op.execute(
        "alter table comp.plan_runs drop constraint if exists plan_runs_idempotency_key, "
        "drop constraint if exists plan_runs_funds_upload_fk, "
        "drop column if exists funds_upload_id, drop column if exists idempotency_key, "
        "drop column if exists request_fingerprint, drop column if exists snapshot, "
        "drop column if exists attempts, drop column if exists worker, "
        "drop column if exists execution_started_at"
    )
    op.execute("drop index if exists comp.plan_runs_tenant_started_idx")
