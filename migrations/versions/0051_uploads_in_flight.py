"""`comp.uploads_in_flight()`: the queue's recovery sees validations of every tenant.

Revision ID: 0051
Revises: 0050
Create Date: 2026-12-07

Validation and the employee_rows fill run as Huey tasks (`uploads.validate`,
`uploads.fill_rows`). A worker that dies while holding one leaves the upload `processing`
(or its rows `filling`); the recovery (at consumer start and every minute, like
`comp.runs_in_flight()` for runs) lists those through this SECURITY DEFINER function, which
returns ids and states only, and queues them again when no live worker holds their
advisory lock. Runs forward on a database with data: it only adds the function.
"""

from alembic import op

from migrations.rls import APP

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = None

UPGRADE = f"""
create function comp.uploads_in_flight()
returns table (tenant_id uuid, upload_id uuid, status text, rows_status text,
               claimed boolean, attempts int, updated_at timestamptz)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.tenant_id, u.id, u.status, u.metadata -> 'rows' ->> 'status',
         (u.metadata -> 'validation' ->> 'worker') is not null,
         coalesce((u.metadata -> 'validation' ->> 'attempts')::int, 0), u.updated_at
    from comp.uploads u
   where u.status = 'processing'
      or (u.status = 'ready' and u.metadata -> 'rows' ->> 'status' in ('queued', 'filling'))
   order by u.updated_at, u.id
$$;
revoke all on function comp.uploads_in_flight() from public;
grant execute on function comp.uploads_in_flight() to {APP};
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("drop function if exists comp.uploads_in_flight()")
