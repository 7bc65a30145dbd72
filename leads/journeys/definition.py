"""What a nurture journey is: a trigger, a small tree of steps, exit conditions and a re-entry policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from leads.lifecycle import SAL

TRIGGER_KINDS = ("event", "score_crossed", "quadrant_entered", "stage_entered", "form_submitted", "tag_added",
                 "inactive_days", "returned_by_sales")
CHECK_KINDS = ("profile", "tag", "behaviour", "score", "return_reason")
BEHAVIOURS = ("opened", "clicked", "follows_oa", "replied")
ACTION_KINDS = ("oa_template", "oa_custom", "wecom_task", "tag_add", "tag_remove", "stage", "notify_owner",
                "sdr_task", "webhook")
# Actions that reach the prospect: consent, quiet hours, caps and the 48-hour window apply to these only.
CUSTOMER_ACTIONS = frozenset({"oa_template", "oa_custom", "wecom_task"})
REENTRY_KINDS = ("never", "after_exit", "after_days")
YES, NO = "yes", "no"


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # one of TRIGGER_KINDS
    value: str = ""  # the touchpoint kind, quadrant, stage, form id or tag; "" matches any (form_submitted)
    threshold: float | None = None  # score_crossed: motivation crossing this upwards
    days: int | None = None  # inactive_days
    reasons: tuple[str, ...] = ()  # returned_by_sales: only these return reasons; () = any


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait ``duration``, or until the next ``until`` local time, or both (a duration, then the next HH:MM)."""

    duration: timedelta | None = None
    until: time | None = None


@dataclass(frozen=True, slots=True)
class Check:
    kind: str  # one of CHECK_KINDS
    name: str = ""  # the profile field, the tag, or the behaviour (one of BEHAVIOURS)
    value: str = ""  # profile: the value the field must equal; return_reason: the reason sales gave
    threshold: float = 0.0  # score: motivation at least this (a mid-score lead moves to sales on crossing it)
    within: timedelta = timedelta(days=7)  # behaviour: how far back an open, click or reply counts


@dataclass(frozen=True, slots=True)
class Condition:
    check: Check
    yes: tuple[Step, ...] = ()
    no: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # one of ACTION_KINDS
    params: tuple[tuple[str, str], ...] = ()  # sorted pairs: hashable, and equal whatever the TOML order

    def param(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.params if k == name), default)


Step = Wait | Condition | Action


@dataclass(frozen=True, slots=True)
class Exit:
    stages: tuple[str, ...] = (SAL,)  # reaching one of these (or a later funnel stage) ends the journey
    unsubscribes: bool = True
    replies: bool = False  # a reply since enrolment ends it (a person takes over the conversation)


@dataclass(frozen=True, slots=True)
class Reentry:
    kind: str = "never"  # one of REENTRY_KINDS
    days: int = 0  # after_days: this long after the previous enrolment ended


@dataclass(frozen=True, slots=True)
class Journey:
    id: str
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    exit: Exit = field(default_factory=Exit)
    reentry: Reentry = field(default_factory=Reentry)


def count_steps(steps: tuple[Step, ...]) -> int:
    """Every node of the tree, branches included: a bound on how many outcomes one enrolment can produce."""
    return sum(1 + (count_steps(s.yes) + count_steps(s.no) if isinstance(s, Condition) else 0) for s in steps)
