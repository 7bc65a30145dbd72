"""The step machine: given where an enrolment stands and what is known of the lead, what happens next.

A position is a path into the step tree: ``(2,)`` is the third top-level step, ``(2, "yes", 0)`` the first step
of its yes branch. A position one past the end of a list is valid: the end of a branch continues after its
condition, the end of the journey is done. Conditions are evaluated on the spot, so every call returns a wait,
an action to run, done or exited, and every returned position comes later in the tree than the one given:
an enrolment produces at most ``count_steps(journey.steps) + 1`` outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from leads.journeys.definition import NO, YES, Action, Check, Condition, Exit, Journey, Step, Wait
from leads.lifecycle import CUSTOMER, LEAD, MQL, OPPORTUNITY, SAL, SQL, UNSUBSCRIBED

Position = tuple[int | str, ...]
START: Position = (0,)
FUNNEL = (LEAD, MQL, SAL, SQL, OPPORTUNITY, CUSTOMER)
CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class LeadView:
    """What the machine and the send policy may know of a lead, read by the caller at the time of the step."""

    stage: str
    tags: frozenset[str] = frozenset()
    profile: Mapping[str, str] = field(default_factory=dict)
    unsubscribed: bool = False  # consent revoked (退订), whatever the stage says
    follows_oa: bool = False
    wecom_contact: bool = False  # a member of ours has the lead as a WeCom external contact
    last_inbound_at: datetime | None = None  # the lead's last message or interaction with the OA
    behaviour: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)  # "opened" -> times
    motivation: float = 0.0
    return_reason: str = ""  # the reason sales gave when it last returned the lead


@dataclass(frozen=True, slots=True)
class Advance:
    next_position: Position
    due_at: datetime


@dataclass(frozen=True, slots=True)
class RunAction:
    action: Action
    next_position: Position


@dataclass(frozen=True, slots=True)
class Done:
    reason: str = "completed"


@dataclass(frozen=True, slots=True)
class Exited:
    reason: str  # "stage:sal", "unsubscribed", "replied", "journey_changed"


Outcome = Advance | RunAction | Done | Exited


def step(journey: Journey, position: Position, lead: LeadView, now: datetime, *, enrolled_at: datetime,
         tz: tzinfo = CHINA) -> Outcome:
    """The next outcome from ``position``; call again at ``next_position`` after running an action or at
    ``due_at`` after a wait. ``now`` must be aware."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    while True:
        reason = exit_reason(journey.exit, lead, enrolled_at)
        if reason:
            return Exited(reason)
        found = _resolve(journey.steps, position)
        if found is None:
            return Exited("journey_changed")
        node, at, after = found
        if node is None:
            return Done()
        if isinstance(node, Wait):
            return Advance(after, wait_until(node, now, tz))
        if isinstance(node, Action):
            return RunAction(node, after)
        branch = YES if holds(node.check, lead, now) else NO
        position = (*at, branch, 0)  # descending strictly deeper: the loop ends with the tree


def exit_reason(exit: Exit, lead: LeadView, enrolled_at: datetime) -> str:
    """Why the lead leaves the journey now ("" to stay). Unsubscribing always ends marketing, whatever the
    journey says about it: the flag only decides whether the exit is recorded as such or as consent later."""
    if lead.unsubscribed or lead.stage == UNSUBSCRIBED:
        return "unsubscribed"
    for target in exit.stages:
        if reached(lead.stage, target):
            return f"stage:{target}"
    if exit.replies and lead.last_inbound_at is not None and lead.last_inbound_at > enrolled_at:
        return "replied"
    return ""


def reached(stage: str, target: str) -> bool:
    """At ``target`` or past it in the funnel: a lead accepted and already qualified (SQL) has reached SAL."""
    if stage in FUNNEL and target in FUNNEL:
        return FUNNEL.index(stage) >= FUNNEL.index(target)
    return stage == target


def holds(check: Check, lead: LeadView, now: datetime) -> bool:
    if check.kind == "tag":
        return check.name in lead.tags
    if check.kind == "profile":
        return lead.profile.get(check.name, "") == check.value
    if check.kind == "score":
        return lead.motivation >= check.threshold
    if check.kind == "return_reason":
        return lead.return_reason == check.value
    if check.name == "follows_oa":
        return lead.follows_oa
    since = now - check.within
    times = lead.behaviour.get(check.name, ())
    if check.name == "replied" and lead.last_inbound_at is not None:
        times = (*times, lead.last_inbound_at)
    return any(since <= t <= now for t in times)


def wait_until(wait: Wait, now: datetime, tz: tzinfo = CHINA) -> datetime:
    """When a wait ends. With a local time, "2d 10:00" is 10:00 on the calendar day two days on (a series keeps
    its rhythm instead of drifting a day per step); a time already past then, or "10:00" alone, is the next one.
    """
    due = now + (wait.duration or timedelta(0))
    if wait.until is None:
        return due
    local = due.astimezone(tz)
    target = datetime.combine(local.date(), wait.until, tzinfo=tz)
    if target <= now:
        target = datetime.combine(local.date() + timedelta(days=1), wait.until, tzinfo=tz)
    return target


def _resolve(steps: tuple[Step, ...], position: Position) -> tuple[Step | None, Position, Position] | None:
    """The node at ``position`` (None past the end of the journey), where it really is (the end of a branch is
    the step after its condition) and the position after it; None when the position does not fit the tree (the
    journey was edited since the lead enrolled)."""
    if not position or len(position) % 2 != 1:
        return None
    lists: list[tuple[Step, ...]] = [steps]
    for depth in range(0, len(position) - 1, 2):
        index, branch = position[depth], position[depth + 1]
        current = lists[-1]
        if not _index(index, len(current) - 1) or branch not in (YES, NO):
            return None
        node = current[index]  # type: ignore[index]
        if not isinstance(node, Condition):
            return None
        lists.append(node.yes if branch == YES else node.no)
    last = position[-1]
    if not _index(last, len(lists[-1])):
        return None
    path = list(position)
    while path[-1] == len(lists[-1]):  # the end of a branch continues after its condition
        if len(path) == 1:
            return None, tuple(path), tuple(path)
        del path[-2:]
        lists.pop()
        path[-1] = int(path[-1]) + 1
    node = lists[-1][int(path[-1])]
    return node, tuple(path), (*path[:-1], int(path[-1]) + 1)


def _index(value: int | str, highest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= highest
