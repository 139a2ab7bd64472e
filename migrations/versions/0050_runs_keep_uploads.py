"""Runs keep their uploads: an upload that any run references cannot be deleted.

Revision ID: 0050
Revises: 0040
Create Date: 2026-12-07

`plan_runs.upload_id` and `plan_runs.funds_upload_id` referenced `comp.uploads` with
`ON DELETE SET NULL`: deleting a draft run's upload silently cut the run off from its
inputs, and deleting a finalized run's upload was refused only by the frozen-run trigger,
after the service had already removed the files. Both become `NO ACTION` (checked at the
end of the statement, so deleting a whole tenant, which cascades to its runs and its
uploads, still works): the delete is refused while a run references the upload, and the
uploads service removes files only after the deletion has committed.

Runs forward on a database with data: only the constraints' actions change.
"""

from alembic import op

revision = "0050"
down_revision = "0040"
branch_labels = None
depends_on = None

UPGRADE = """
alter table comp.plan_runs
  drop constraint plan_runs_tenant_id_upload_id_fkey,
  drop constraint plan_runs_funds_upload_fk,
  add constraint plan_runs_tenant_id_upload_id_fkey foreign key (tenant_id, upload_id)
    references comp.uploads (tenant_id, id) on delete no action,
  add constraint plan_runs_funds_upload_fk foreign key (tenant_id, funds_upload_id)
    references comp.uploads (tenant_id, id) on delete no action;
"""

DOWNGRADE = """
alter table comp.plan_runs
  drop constraint plan_runs_tenant_id_upload_id_fkey,
  drop constraint plan_runs_funds_upload_fk,
  add constraint plan_runs_tenant_id_upload_id_fkey foreign key (tenant_id, upload_id)
    references comp.uploads (tenant_id, id) on delete set null (upload_id),
  add constraint plan_runs_funds_upload_fk foreign key (tenant_id, funds_upload_id)
    references comp.uploads (tenant_id, id) on delete set null (funds_upload_id);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
