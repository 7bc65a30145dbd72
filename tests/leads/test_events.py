"""Domain events (leads/events.py): what a stage change means, who hears what in which order, and a registry
that never changes once built. Pure: the "transaction" is whatever object the publisher passes."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from leads.events import (
    BecameMQL,
    DomainEvents,
    Publisher,
    QuadrantEntered,
    StageChanged,
    stage_events,
)
from leads.lifecycle import transition

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TX = object()


def entered(lead_id: int, new: str = "sales_ready") -> QuadrantEntered:
    return QuadrantEntered(lead_id, "nurture", new, "lead", AT)


def changed(lead_id: int, to: str = "mql") -> StageChanged:
    return StageChanged.of(lead_id, transition("lead", to, "system", "score"), AT, touchpoint_id=9)


def recorder(log: list[tuple[str, Any, tuple[Any, ...]]], name: str):
    async def hear(tx: Any, events: Sequence[Any]) -> None:
        log.append((name, tx, tuple(events)))
    return hear


async def heard_by_module_level(tx: Any, events: Sequence[Any]) -> None:
    """Picklable: registries travel to recompute worker processes."""


def test_a_stage_change_to_mql_also_means_the_lead_became_an_mql() -> None:
    change = changed(1)
    assert (change.from_stage, change.to_stage, change.actor, change.reason, change.touchpoint_id) == (
        "lead", "mql", "system", "score", 9)
    assert stage_events(change) == (change, BecameMQL(1, "lead", "system", AT, "", 9))
    recycled = changed(1, "recycled")
    assert stage_events(recycled) == (recycled,)


async def test_each_type_is_heard_once_per_dispatch_in_order_of_arrival_and_subscription() -> None:
    log: list[tuple[str, Any, tuple[Any, ...]]] = []
    events = (DomainEvents().subscribe(StageChanged, recorder(log, "a")).subscribe(QuadrantEntered, recorder(log, "b"))
              .subscribe(StageChanged, recorder(log, "c")))
    s1, q1, s2, q2 = changed(1), entered(1), changed(2), entered(2)

    await events.dispatch(TX, [s1, q1, s2, q2])

    assert log == [("a", TX, (s1, s2)), ("c", TX, (s1, s2)), ("b", TX, (q1, q2))]


async def test_events_nobody_subscribed_to_are_dropped_and_non_events_refused() -> None:
    log: list[tuple[str, Any, tuple[Any, ...]]] = []
    events = DomainEvents().subscribe(BecameMQL, recorder(log, "routing"))
    await events.dispatch(TX, [entered(1), changed(1, "recycled")])
    assert log == []
    with pytest.raises(TypeError, match="not a domain event"):
        await events.dispatch(TX, ["lead 1 became an MQL"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a domain event"):
        events.subscribe(dict, recorder(log, "x"))


def test_subscribing_builds_a_new_registry_and_leaves_the_old_one_as_it_was() -> None:
    empty: DomainEvents[Any] = DomainEvents()
    one = empty.subscribe(BecameMQL, heard_by_module_level)
    two = one.subscribe(BecameMQL, heard_by_module_level)
    assert (empty.subscribers(BecameMQL), len(one.subscribers(BecameMQL)), len(two.subscribers(BecameMQL))) == (
        (), 1, 2)
    assert pickle.loads(pickle.dumps(two)).subscribers(BecameMQL) == (heard_by_module_level, heard_by_module_level)


async def test_what_subscribers_publish_in_turn_is_heard_after_everyone_heard_its_cause() -> None:
    log: list[tuple[str, Any, tuple[Any, ...]]] = []
    publisher: Publisher[Any]

    async def act(tx: Any, events: Sequence[QuadrantEntered]) -> None:  # a quadrant action moving the stage
        log.append(("act", tx, tuple(events)))
        await publisher.publish(tx, [e for q in events for e in stage_events(changed(q.lead_id))])

    events = (DomainEvents().subscribe(QuadrantEntered, act).subscribe(QuadrantEntered, recorder(log, "late"))
              .subscribe(StageChanged, recorder(log, "stage")).subscribe(BecameMQL, recorder(log, "route")))
    publisher = Publisher(events)

    await publisher.publish(TX, [entered(1), entered(2)])

    assert [(name, [e.lead_id for e in batch]) for name, _, batch in log] == [
        ("act", [1, 2]), ("late", [1, 2]),  # the cause, to every subscriber: "late" subscribed after "act"
        ("stage", [1, 2]), ("route", [1, 2]),  # then its consequences
    ]
    log.clear()
    await publisher.publish(TX, [entered(3)])  # the publisher is ready for the next publish
    assert [name for name, _, _ in log] == ["act", "late", "stage", "route"]


async def test_a_failing_subscriber_stops_the_publish_and_reaches_the_publisher() -> None:
    log: list[tuple[str, Any, tuple[Any, ...]]] = []

    async def fail_for_lead_1(tx: Any, events: Sequence[Any]) -> None:
        if any(e.lead_id == 1 for e in events):
            raise RuntimeError("routing is down")

    publisher = Publisher(DomainEvents().subscribe(BecameMQL, fail_for_lead_1)
                          .subscribe(BecameMQL, recorder(log, "after")))
    with pytest.raises(RuntimeError, match="routing is down"):
        await publisher.publish(TX, stage_events(changed(1)))
    assert log == []  # the subscribers after it never ran; the publisher's transaction rolls back
    await publisher.publish(TX, stage_events(changed(2)))  # the failure left nothing queued behind
    assert [(name, [e.lead_id for e in batch]) for name, _, batch in log] == [("after", [2])]
