"""One due run of an enrolment, decided purely: from where it stands to its next wait, its end, or a deferred send.

The executor (bot/journeys) loads the enrolment and the lead's facts, calls ``plan_run`` and writes what comes
back in one transaction: the step records (journey_steps, numbered from the enrolment's ``seq``), the effects
of the actions that went ahead, and the enrolment's new position. Rerunning a plan that was not committed gives
the same records and the same numbers, which is what makes a step happen once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from leads.journeys.definition import CUSTOMER_ACTIONS, Action, Journey, count_steps
from leads.journeys.machine import Advance, Done, Exited, LeadView, Position, RunAction, step
from leads.journeys.policy import SendPolicy, decide_send
from leads.lifecycle import SYSTEM, allowed

ACTIVE, DONE, EXITED = "active", "done", "exited"


def fingerprint(journey: Journey) -> str:
    """The definition's identity: an enrolment made under another one exits ("journey_changed")."""
    return hashlib.sha256(repr(journey).encode()).hexdigest()[:16]


def encode(position: Position) -> str:
    """(2, "yes", 0) -> "2.yes.0", as journey_enrolments.position stores it."""
    return ".".join(str(p) for p in position)


def decode(text: str) -> Position:
    """The inverse of ``encode``; ValueError for anything it did not write."""
    parts = text.split(".")
    if len(parts) % 2 == 0:
        raise ValueError(f"bad position {text!r}")
    out: list[int | str] = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            if part not in ("yes", "no"):
                raise ValueError(f"bad position {text!r}")
            out.append(part)
        else:
            if not part.isdigit():
                raise ValueError(f"bad position {text!r}")
            out.append(int(part))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What the planner needs of a stored enrolment."""

    id: int
    lead_id: int
    position: Position
    seq: int
    enrolled_at: datetime
    version: str


@dataclass(frozen=True, slots=True)
class Record:
    """One journey_steps row. ``action``: for an action that went ahead, what to do (the template fallback may
    have replaced an OA custom message)."""

    seq: int
    position: str
    kind: str  # wait | action | done | exit
    outcome: str  # waiting | sent | done | skipped | deferred | completed | exited
    reason: str = ""
    action: Action | None = None
    channel: str = ""
    action_kind: str = ""  # the step's action kind, whatever became of it


@dataclass(frozen=True, slots=True)
class Plan:
    records: tuple[Record, ...]
    position: Position
    seq: int
    status: str  # active | done | exited
    reason: str  # why it ended, or ""
    due_at: datetime | None  # the next run, while active

    @property
    def effects(self) -> tuple[Record, ...]:
        """The records whose action is to be carried out."""
        return tuple(r for r in self.records if r.action is not None)


def plan_run(journey: Journey | None, enrolment: Enrolled, lead: LeadView | None, now: datetime,
             policy: SendPolicy, sends: Mapping[str, Sequence[datetime]]) -> Plan:
    """Run ``enrolment`` from its position until it waits, ends or defers a send. ``journey`` None: no longer
    configured; ``lead`` None: merged into another lead or erased (its survivor has its own enrolments)."""
    records: list[Record] = []
    seq, position = enrolment.seq, enrolment.position

    def record(kind: str, outcome: str, reason: str = "", action: Action | None = None, channel: str = "",
               action_kind: str = "") -> None:
        nonlocal seq
        seq += 1
        records.append(Record(seq, encode(position), kind, outcome, reason, action, channel, action_kind))

    def end(status: str, reason: str) -> Plan:
        record("done" if status == DONE else "exit", "completed" if status == DONE else "exited", reason)
        return Plan(tuple(records), position, seq, status, reason, None)

    if journey is None:
        return end(EXITED, "journey_removed")
    if lead is None:
        return end(EXITED, "lead_gone")
    if enrolment.version != fingerprint(journey):
        return end(EXITED, "journey_changed")
    counted = {channel: list(times) for channel, times in sends.items()}
    for _ in range(count_steps(journey.steps) + 1):
        outcome = step(journey, position, lead, now, enrolled_at=enrolment.enrolled_at, tz=policy.quiet.tz)
        if isinstance(outcome, Done):
            return end(DONE, outcome.reason)
        if isinstance(outcome, Exited):
            return end(EXITED, outcome.reason)
        if isinstance(outcome, Advance):
            record("wait", "waiting", outcome.due_at.isoformat())
            return Plan(tuple(records), outcome.next_position, seq, ACTIVE, "", outcome.due_at)
        assert isinstance(outcome, RunAction)
        action = outcome.action
        kind = action.kind
        decision = decide_send(action, lead, now, policy, counted)
        if decision.defer_until is not None:
            record("action", "deferred", decision.reason, channel=decision.channel, action_kind=kind)
            return Plan(tuple(records), position, seq, ACTIVE, "", decision.defer_until)
        if not decision.send or decision.action is None:
            record("action", "skipped", decision.reason, channel=decision.channel, action_kind=kind)
        elif kind in CUSTOMER_ACTIONS:
            record("action", "sent", decision.reason, decision.action, decision.channel, kind)
            counted.setdefault(decision.channel, []).append(now)
        else:
            lead, skipped = _internal(action, lead)
            if skipped:
                record("action", "skipped", skipped, channel="internal", action_kind=kind)
            else:
                record("action", "done", "ok", action, "internal", kind)
        position = outcome.next_position
    return end(EXITED, "too_many_steps")  # unreachable: the machine only moves forward through the tree


def _internal(action: Action, lead: LeadView) -> tuple[LeadView, str]:
    """The lead as the rest of this run sees it after a tag or stage action, or why the action cannot apply."""
    if action.kind == "tag_add":
        return replace(lead, tags=lead.tags | {action.param("tag")}), ""
    if action.kind == "tag_remove":
        return replace(lead, tags=lead.tags - {action.param("tag")}), ""
    if action.kind == "stage":
        target = action.param("stage")
        if lead.stage == target:
            return lead, "stage_unchanged"
        if not allowed(lead.stage, target, SYSTEM):
            return lead, "stage_not_allowed"
        return replace(lead, stage=target), ""
    return lead, ""
