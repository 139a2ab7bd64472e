"""report_jobs: export bundles and deliveries are jobs too; cancelled jobs; recovery.

Revision ID: 0071
Revises: 0070
Create Date: 2026-12-07

The signed export bundle used to be rendered inside the HTTP request (2,000 employees did not
finish in 150 s). It is now a queued job (`kind = 'export'`), as is delivering statements to
managers (`kind = 'delivery'`); a job can be cancelled (`status = 'cancelled'`). A worker that
dies mid-job leaves it `running`: `comp.report_jobs_in_flight()` (SECURITY DEFINER, like
`comp.runs_in_flight()`) lets the periodic recovery see such jobs of every tenant, and the
job resumes where its files on disk stop. Runs forward on a database with data (existing rows
satisfy the wider checks).
"""

from alembic import op

from migrations.rls import APP

revision = "0071"
down_revision = "0070"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(f"""
    alter table comp.report_jobs drop constraint report_jobs_kind_check;
    alter table comp.report_jobs add constraint report_jobs_kind_check
      check (kind in ('statements', 'export', 'delivery'));
    alter table comp.report_jobs drop constraint report_jobs_status_check;
    alter table comp.report_jobs add constraint report_jobs_status_check
      check (status in ('queued', 'running', 'done', 'failed', 'cancelled'));
    create function comp.report_jobs_in_flight()
    returns table (tenant_id uuid, job_id uuid, kind text)
    language sql stable security definer set search_path = pg_catalog, pg_temp as $$
      select j.tenant_id, j.id, j.kind from comp.report_jobs j
       where j.status = 'running'
       order by j.created_at, j.id
    $$;
    revoke all on function comp.report_jobs_in_flight() from public;
    grant execute on function comp.report_jobs_in_flight() to {APP};
    """)


def downgrade() -> None:
    op.execute("""
    drop function comp.report_jobs_in_flight();
    delete from comp.report_jobs where kind <> 'statements' or status = 'cancelled';
    alter table comp.report_jobs drop constraint report_jobs_status_check;
    alter table comp.report_jobs add constraint report_jobs_status_check
      check (status in ('queued', 'running', 'done', 'failed'));
    alter table comp.report_jobs drop constraint report_jobs_kind_check;
    alter table comp.report_jobs add constraint report_jobs_kind_check
      check (kind in ('statements'));
    """)
