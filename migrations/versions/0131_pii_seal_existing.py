"""PII field-level encryption, forward on data: seal what was stored in plaintext.

Revision ID: 0131
Revises: 0130
Create Date: 2026-12-08

For every tenant with sensitive catalog inputs (0130), seals under the tenant's data key
(created here, wrapped by the KMS the settings name: PII_KMS / PII_KEY_FILE / DATA_DIR) the
sensitive cells of `employee_rows.raw`, sensitive `upload_problems.value`s and warning
samples of upload summaries, and replaces every plaintext typed Parquet and rows spool under
`<DATA_DIR>/uploads/<tenant>/` by its sealed form (same plaintext: the hashes runs name do
not change). Already sealed data is left alone; with nothing to seal the KMS is not touched.
Run it where the server's data directory and key file are (`paysheet migrate`): files it
cannot see stay plain Parquet, which the server still reads (docs/operations.md).
"""

from alembic import context, op

revision = "0131"
down_revision = "0130"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from server.modules.uploads.legacy import seal_existing
    from server.settings import get_settings

    settings = context.config.attributes.get("settings") or get_settings()
    seal_existing(op.get_bind(), settings)


def downgrade() -> None:
    """Sealed data stays sealed: decrypting PII back to plaintext is not a migration."""
