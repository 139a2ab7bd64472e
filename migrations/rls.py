"""Row-level security for a tenant table: the SQL every revision writes the same way.

A tenant table is isolated in the database by three things, always together:
- RLS ENABLED and FORCED, so the owner role that runs migrations is subject to it as well;
- policy `tenant_isolation`: a row is visible and writable only when its tenant column equals
  `current_setting('app.tenant_id')`, which raises when the setting is missing (fail closed);
- policy `owner_maintenance`: the owner role (migrations, SECURITY DEFINER functions such as
  login, which run before any tenant is known) sees every tenant.
The app role's privileges are part of the same decision, so `enable_rls` can set them too.

Revisions import this as `migrations.rls` (migrations/env.py puts the folder that holds
`migrations/` on sys.path). A revision that has run must keep producing the same schema:
change what this module writes only by adding a parameter whose default writes what it
writes today. docs/dev/migrations.md shows how to use it and how to check that.
"""

from __future__ import annotations

from server.settings import APP_ROLE as APP
from server.settings import OWNER_ROLE as OWNER

__all__ = ["APP", "DML", "OWNER", "enable_rls"]

DML = "select, insert, update, delete"


def enable_rls(table: str, *, key: str = "tenant_id", grant: str | None = None) -> str:
    """SQL putting `comp.<table>` under tenant isolation (RLS forced, both policies).

    `key` is the column holding the tenant id (`id` for `comp.tenants` itself). With `grant`
    (e.g. `DML`, or `"select, insert"` for an append-only table) the app role's privileges
    on the table become exactly that: everything is revoked first, because the default
    privileges set in 0001 give the app role full DML on every new table. Without it the
    privileges are left as they are (0001 grants on all its tables at once).
    """
    sql = f"""
alter table comp.{table} enable row level security;
alter table comp.{table} force row level security;
create policy tenant_isolation on comp.{table}
  using ({key} = current_setting('app.tenant_id')::uuid)
  with check ({key} = current_setting('app.tenant_id')::uuid);
create policy owner_maintenance on comp.{table} to {OWNER} using (true) with check (true);
"""
    if grant is not None:
        sql += f"revoke all on comp.{table} from {APP};\ngrant {grant} on comp.{table} to {APP};\n"
    return sql
