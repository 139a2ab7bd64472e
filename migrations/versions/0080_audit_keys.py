"""Keyed audit chain: per-tenant sequence, HMAC per event, signed checkpoints.

Revision ID: 0080
Revises: 0051
Create Date: 2026-12-07

`comp.audit_events` gains `seq` (1, 2, 3... per tenant: the event's position in its chain),
`key_id` and `mac` (HMAC-SHA256 of the event's signature under a key the server holds and
the database roles never do; see server/modules/audit/keys.py). Events stored before this
revision keep `mac` null: they are the legacy prefix of their chain, covered by the first
checkpoint written after the upgrade.

`comp.audit_checkpoints` anchors each tenant's chain head: (event count, last event id, head
signature), itself HMAC'd and linked to the previous checkpoint. Tail truncation leaves a
checkpoint counting more events than the chain holds. Both tables are append-only for every
role (triggers) and the app role may only select and insert.

Runs forward on data: `seq` is numbered per tenant in id order (the append-only trigger is
disabled for the length of that one update, by the owner, inside the migration).
"""

from alembic import op

from migrations.rls import APP, enable_rls

revision = "0080"
down_revision = "0051"
branch_labels = None
depends_on = None

UPGRADE = """
alter table comp.audit_events add column seq bigint;
alter table comp.audit_events add column key_id text;
alter table comp.audit_events add column mac text;
alter table comp.audit_events disable trigger audit_events_append_only;
update comp.audit_events e set seq = n.ordinal
  from (select id, row_number() over (partition by tenant_id order by id) as ordinal
          from comp.audit_events) n
 where n.id = e.id;
alter table comp.audit_events enable trigger audit_events_append_only;
alter table comp.audit_events alter column seq set not null;
create unique index audit_events_tenant_seq_idx on comp.audit_events (tenant_id, seq);

create table comp.audit_checkpoints (
  id bigserial primary key,
  tenant_id uuid not null references comp.tenants(id) on delete cascade,
  seq bigint not null,
  event_count bigint not null check (event_count >= 0),
  last_event_id bigint,
  head_signature text,
  at timestamptz not null default now(),
  key_id text not null,
  prev_mac text,
  mac text not null,
  unique (tenant_id, seq)
);

create function comp.reject_checkpoint_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_checkpoints is append-only: % refused', lower(tg_op)
    using errcode = 'PS409';
end $$;
create trigger audit_checkpoints_append_only before update or delete on comp.audit_checkpoints
  for each row execute function comp.reject_checkpoint_change();
create trigger audit_checkpoints_no_truncate before truncate on comp.audit_checkpoints
  for each statement execute function comp.reject_checkpoint_change();
"""

DOWNGRADE = """
drop table if exists comp.audit_checkpoints;
drop function if exists comp.reject_checkpoint_change();
drop index if exists comp.audit_events_tenant_seq_idx;
alter table comp.audit_events drop column mac, drop column key_id, drop column seq;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute(enable_rls("audit_checkpoints", grant="select, insert"))
    op.execute(f"grant usage, select on sequence comp.audit_checkpoints_id_seq to {APP}")


def downgrade() -> None:
    op.execute(DOWNGRADE)
