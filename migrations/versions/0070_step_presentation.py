"""plan_steps: the presentation a statement uses (label, display format).

Revision ID: 0070
Revises: 0081
Create Date: 2026-12-07

A statement is a letter in the plan's own words: each step may carry a `label` ("Target
bonus") and a display `format` (money, percent, points, integer, number). They are part of
the plan document (engine.plan.StepSpec) but outside the plan hash, and the plans module
re-derives a document's steps from these rows, so the rows keep them. Both nullable: every
existing step reads as before (its name, its value as computed). Runs forward with data.
"""

from alembic import op

revision = "0070"
down_revision = "0081"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    alter table comp.plan_steps add column label text;
    alter table comp.plan_steps add column display_format text
      constraint plan_steps_display_format_check
      check (display_format in ('money', 'percent', 'points', 'integer', 'number'));
    """)


def downgrade() -> None:
    op.execute("""
    alter table comp.plan_steps drop column display_format;
    alter table comp.plan_steps drop column label;
    """)
