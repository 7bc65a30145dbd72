"""A tiny journey executor for tests: drives the machine and the send policy on a controllable clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from leads.journeys.definition import Action, Journey
from leads.journeys.machine import START, Advance, Done, Exited, LeadView, Position, RunAction, step
from leads.journeys.policy import SendDecision, SendPolicy, decide_send

World = Callable[[datetime, LeadView], LeadView]


@dataclass
class Run:
    sent: list[tuple[datetime, Action, SendDecision]] = field(default_factory=list)
    skipped: list[tuple[datetime, Action, str]] = field(default_factory=list)
    end: Done | Exited | None = None
    ended_at: datetime | None = None
    lead: LeadView | None = None
    outcomes: int = 0
    positions: list[Position] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [d.action.kind if d.action else a.kind for _, a, d in self.sent]

    def texts(self) -> list[str]:
        return [a.param("text") or a.param("tag") or a.param("stage") for _, a, _ in self.sent]


def drive(journey: Journey, lead: LeadView, start: datetime, *, world: World | None = None,
          policy: SendPolicy | None = None, limit: int = 1000) -> Run:
    """Run one enrolment to its end. ``world`` changes the lead's facts as time passes (called before every
    step); actions change tags and stage as the real executor would."""
    policy = policy or SendPolicy()
    run, now, position = Run(), start, START
    sends: dict[str, list[datetime]] = {}
    while run.outcomes < limit:
        if world is not None:
            lead = world(now, lead)
        outcome = step(journey, position, lead, now, enrolled_at=start, tz=policy.quiet.tz)
        run.outcomes += 1
        run.positions.append(position)
        if isinstance(outcome, (Done, Exited)):
            run.end, run.ended_at, run.lead = outcome, now, lead
            return run
        if isinstance(outcome, Advance):
            assert outcome.due_at >= now
            now, position = outcome.due_at, outcome.next_position
            continue
        assert isinstance(outcome, RunAction)
        decision = decide_send(outcome.action, lead, now, policy, sends)
        while decision.defer_until is not None:  # quiet hours: decided again in the morning
            now = decision.defer_until
            decision = decide_send(outcome.action, lead, now, policy, sends)
        if decision.send:
            run.sent.append((now, outcome.action, decision))
            sends.setdefault(decision.channel, []).append(now)
            lead = apply(outcome.action, lead)
        else:
            run.skipped.append((now, outcome.action, decision.reason))
        position = outcome.next_position
    raise AssertionError(f"no end after {limit} outcomes")


def apply(action: Action, lead: LeadView) -> LeadView:
    if action.kind == "tag_add":
        return replace(lead, tags=lead.tags | {action.param("tag")})
    if action.kind == "tag_remove":
        return replace(lead, tags=lead.tags - {action.param("tag")})
    if action.kind == "stage":
        return replace(lead, stage=action.param("stage"))
    return lead
