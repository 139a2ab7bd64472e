"""Alembic's script folder; a package so that revisions can import `migrations.rls`."""
