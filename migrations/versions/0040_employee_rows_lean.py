"""employee_rows: keyed by (upload_id, file_row); the upload reference checked per statement.

Revision ID: 0040
Revises: 0030
Create Date: 2026-11-28

Filling `comp.employee_rows` for a 2M-row upload took minutes (measured: 172-190 s), spent
on per-row work that bulk loading does not need:
- a random-UUID primary key (every insert lands on a random B-tree page) plus a separate
  `upload_id` index. Rows are now identified by their upload and spreadsheet row number
  (`file_row`, as in the validation report and `upload_problems`): one append-only B-tree
  that also serves "the rows of this upload", so `employee_rows_upload_idx` goes.
- the foreign key to `uploads`, which PostgreSQL checks with one lookup per inserted row
  (about 3x the cost of the insert itself here). It is replaced by triggers that keep
  its guarantees: after each INSERT statement, one set-based check that every
  (tenant_id, upload_id) exists, locking those uploads FOR KEY SHARE as the foreign key
  would (a concurrent delete waits); deleting an upload deletes its rows (the old ON DELETE
  CASCADE, also reached from a tenant's deletion); the key columns cannot be updated on
  either side.

Runs forward on a database with data: rows stored before 0040 never recorded their file
row, so they are numbered 1..n per upload in `employee_ref` order (unique, stable; not
their position in the file).
"""

from alembic import op

revision = "0040"
down_revision = "0030"
branch_labels = None
depends_on = None

UPGRADE = """
alter table comp.employee_rows add column file_row int;
update comp.employee_rows r set file_row = n.ordinal
  from (select id, row_number() over (partition by upload_id order by employee_ref, id)
          as ordinal
          from comp.employee_rows) n
 where n.id = r.id;
alter table comp.employee_rows alter column file_row set not null;
alter table comp.employee_rows drop constraint employee_rows_pkey;
alter table comp.employee_rows drop column id;
drop index comp.employee_rows_upload_idx;
alter table comp.employee_rows add constraint employee_rows_pkey
  primary key (upload_id, file_row);
alter table comp.employee_rows drop constraint employee_rows_tenant_id_upload_id_fkey;

create function comp.check_employee_rows_upload() returns trigger language plpgsql as $$
declare
  tenants uuid[];
  uploads uuid[];
  locked int;
begin
  select array_agg(d.tenant_id), array_agg(d.upload_id) into tenants, uploads
    from (select distinct i.tenant_id, i.upload_id from inserted i) d;
  select count(*) into locked from (
    select 1 from comp.uploads u
      join unnest(tenants, uploads) as w(tenant_id, upload_id)
        on u.tenant_id = w.tenant_id and u.id = w.upload_id
     for key share of u) k;
  if locked <> coalesce(cardinality(uploads), 0) then
    raise exception 'insert on employee_rows: an upload it references does not exist'
      using errcode = '23503';
  end if;
  return null;
end $$;
create trigger employee_rows_upload_check after insert on comp.employee_rows
  referencing new table as inserted
  for each statement execute function comp.check_employee_rows_upload();

create function comp.delete_upload_rows() returns trigger language plpgsql
  security definer set search_path = pg_catalog, pg_temp as $$
begin
  delete from comp.employee_rows where upload_id = old.id and tenant_id = old.tenant_id;
  return old;
end $$;
create trigger uploads_delete_rows after delete on comp.uploads
  for each row execute function comp.delete_upload_rows();

create function comp.reject_upload_id_change() returns trigger language plpgsql as $$
begin
  if (new.tenant_id, new.id) is distinct from (old.tenant_id, old.id) then
    raise exception 'uploads: tenant_id and id cannot change' using errcode = '23503';
  end if;
  return new;
end $$;
create trigger uploads_key_guard before update of id, tenant_id on comp.uploads
  for each row execute function comp.reject_upload_id_change();

create function comp.reject_employee_rows_upload_change() returns trigger
  language plpgsql as $$
begin
  if (new.tenant_id, new.upload_id) is distinct from (old.tenant_id, old.upload_id) then
    raise exception 'employee_rows: tenant_id and upload_id cannot change'
      using errcode = '23503';
  end if;
  return new;
end $$;
create trigger employee_rows_key_guard before update of tenant_id, upload_id
  on comp.employee_rows for each row
  execute function comp.reject_employee_rows_upload_change();
"""

DOWNGRADE = """
drop trigger employee_rows_key_guard on comp.employee_rows;
drop trigger uploads_key_guard on comp.uploads;
drop trigger uploads_delete_rows on comp.uploads;
drop trigger employee_rows_upload_check on comp.employee_rows;
drop function comp.reject_employee_rows_upload_change(), comp.reject_upload_id_change(),
  comp.delete_upload_rows(), comp.check_employee_rows_upload();
alter table comp.employee_rows add foreign key (tenant_id, upload_id)
  references comp.uploads (tenant_id, id) on delete cascade;
alter table comp.employee_rows drop constraint employee_rows_pkey;
alter table comp.employee_rows add column id uuid not null default gen_random_uuid();
alter table comp.employee_rows add constraint employee_rows_pkey primary key (id);
alter table comp.employee_rows drop column file_row;
create index employee_rows_upload_idx on comp.employee_rows (upload_id);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
