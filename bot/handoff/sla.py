"""The SLA's domain-event subscribers: timers for every new assignment (LeadAssigned), gone on a decision.

The timers are rows of APScheduler's job store table (``sla_timers``), written here in the publisher's
transaction: an assignment and its timers commit together, or neither does. Each row is the job APScheduler's
own ``SQLAlchemyJobStore.add_job`` would store (the same pickled state): a date trigger at the step's time in
business minutes (leads/sla.py), the step coroutine by textual reference, and plain ids as arguments. The
leading process's scheduler (bot/handoff/sla_scheduler.py) runs them; steps check the assignment when they fire.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.triggers.date import DateTrigger

from bot.config.handoff import SlaConfig
from leads.events import LeadAccepted, LeadAssigned, LeadReturned
from leads.sla import ESCALATE, REASSIGN, REMIND, SLA_REASSIGN_RULE, BusinessCalendar, SlaPolicy, step_times
from storage.repos.assignments import assignment_by_id
from storage.repos.events import EventTx
from storage.repos.sla import add_timers, remove_timers

STEP_FUNC = "bot.handoff.sla_steps:run_step"
TIMER_EXECUTOR = "sla"  # bot/handoff/sla_scheduler.py registers its context-passing executor under this name
STEPS = (REMIND, REASSIGN, ESCALATE)


def business_calendar(cfg: SlaConfig) -> BusinessCalendar:
    return BusinessCalendar.build(spans=cfg.business_hours, business_days=cfg.business_days, holidays=cfg.holidays,
                                  workdays=cfg.workdays, timezone=cfg.timezone)


def sla_policy(cfg: SlaConfig) -> SlaPolicy:
    return SlaPolicy(cfg.remind_after_min, cfg.reassign_after_min, cfg.escalate_after_min)


def timer_id(assignment_id: int, step: str) -> str:
    return f"sla:{assignment_id}:{step}"


def timer_row(assignment_id: int, lead_id: int, step: str, run_at: datetime,
              attempt: int = 0) -> tuple[str, float, bytes]:
    """The job store row of one step: (id, next run in epoch seconds, pickled job state), as APScheduler's
    SQLAlchemyJobStore writes it (``Job.__getstate__``, version 1). Built as a state, not through ``Job()``: that
    would check the arguments against ``run_step``'s signature, whose first one the executor supplies. Late
    runs still run (no misfire grace): a restart must not skip a step. ``attempt``: the retries before this
    run (a step that failed is stored again, under the same id, by bot/handoff/sla_steps.py)."""
    run_at = run_at.astimezone(UTC)
    job = Job.__new__(Job)
    job.__setstate__({
        "version": 1, "id": timer_id(assignment_id, step), "func": STEP_FUNC,
        "trigger": DateTrigger(run_at, timezone=UTC), "executor": TIMER_EXECUTOR,
        "args": (assignment_id, lead_id, step), "kwargs": {"attempt": attempt} if attempt else {},
        "name": f"SLA {step} of assignment {assignment_id}",
        "misfire_grace_time": None, "coalesce": True, "max_instances": 1, "next_run_time": run_at,
    })  # resolves STEP_FUNC: a typo fails here, in the assigning transaction, not hours later
    return job.id, run_at.timestamp(), pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True, slots=True)
class SlaTimers:
    """LeadAssigned: the assignment's step timers. The timers of the assignment it replaced are dropped (a
    superseded assignment's steps would do nothing anyway)."""

    policy: SlaPolicy
    calendar: BusinessCalendar

    async def __call__(self, tx: EventTx, events: Sequence[LeadAssigned]) -> None:
        rows: list[tuple[str, float, bytes]] = []
        replaced: list[str] = []
        for event in events:
            origin = None
            if event.previous_assignment_id is not None:
                replaced.extend(timer_id(event.previous_assignment_id, step) for step in STEPS)
                if event.rule == SLA_REASSIGN_RULE:  # escalation counts from the assignment the SLA took it from
                    previous = await assignment_by_id(tx.db, event.previous_assignment_id)
                    origin = previous.assigned_at if previous is not None else None
            for step, at in step_times(self.policy, self.calendar, assigned_at=event.at, rule=event.rule,
                                       origin_at=origin):
                rows.append(timer_row(event.assignment_id, event.lead_id, step, at))
        await remove_timers(tx.db, replaced)
        await add_timers(tx.db, rows)


@dataclass(frozen=True, slots=True)
class SlaDone:
    """LeadAccepted / LeadReturned: the decided assignment's timers go (its steps would do nothing anyway)."""

    async def __call__(self, tx: EventTx, events: Sequence[LeadAccepted | LeadReturned]) -> None:
        await remove_timers(tx.db, [timer_id(e.assignment_id, step) for e in events for step in STEPS])


def sla_timers(cfg: SlaConfig) -> SlaTimers:
    return SlaTimers(sla_policy(cfg), business_calendar(cfg))
