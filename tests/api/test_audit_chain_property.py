"""Property: any single change to a chain of audit events is found at exactly that event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from server.modules.audit import keys
from server.modules.audit.models import AuditEvent
from server.modules.audit.service import check_chain, event_material, event_signature

TENANT = uuid.UUID(int=7)
RING = keys.StaticKeyring({"t1": b"k" * 32}, "t1")
payloads = st.none() | st.dictionaries(
    st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=8), max_size=3
)


def _chain(afters: list) -> list[AuditEvent]:
    events, previous = [], None
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index, after in enumerate(afters):
        event = AuditEvent(
            id=index + 1,
            tenant_id=TENANT,
            actor_user_id=None,
            action="x.y",
            entity="thing",
            entity_id=uuid.UUID(int=index),
            before=None,
            after=after,
            at=start + timedelta(seconds=index),
            request_id=None,
            prev_signature=previous,
            seq=index + 1,
            key_id="t1",
        )
        event.signature = event_signature(event)
        event.mac = keys.mac(RING, "t1", event_material(TENANT, event.seq, event.signature))
        previous = event.signature
        events.append(event)
    return events


@settings(max_examples=60, deadline=None)
@given(
    afters=st.lists(payloads, min_size=1, max_size=8),
    position=st.integers(min_value=0),
    field=st.sampled_from(["action", "entity", "after", "at", "actor_user_id", "request_id"]),
)
def test_single_tamper_is_found_at_its_event(afters, position, field) -> None:
    events = _chain(afters)
    assert check_chain(events, ring=RING).ok
    target = events[position % len(events)]
    forged = {
        "action": "x.forged",
        "entity": "other",
        "after": {"forged": [target.after]},
        "at": target.at + timedelta(microseconds=1),
        "actor_user_id": uuid.UUID(int=99),
        "request_id": "forged",
    }[field]
    setattr(target, field, forged)
    report = check_chain(events, ring=RING)
    assert (report.ok, report.broken_event_id) == (False, target.id)


@settings(max_examples=30, deadline=None)
@given(afters=st.lists(payloads, min_size=2, max_size=8), data=st.data())
def test_removed_or_swapped_events_break_the_link(afters, data) -> None:
    events = _chain(afters)
    gone = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    remaining = events[:gone] + events[gone + 1 :]
    assert check_chain(remaining, ring=RING).broken_event_id == events[gone + 1].id
    swapped = [*events[:gone], events[gone + 1], events[gone], *events[gone + 2 :]]
    assert check_chain(swapped, ring=RING).broken_event_id == events[gone + 1].id
