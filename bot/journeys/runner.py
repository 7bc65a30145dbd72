"""Running due journey steps: the executor behind the ``journey_steps`` job.

One transaction per batch: claim due enrolments (locked, skipping those another process holds), read the leads'
facts, plan each run (leads/journeys/plan.py), write the outbox rows, tasks, tags and stage changes, the step
records and the enrolments' new positions, then commit. A crash before the commit leaves it all undone and the
enrolments due, so the next run does the same steps with the same numbers; after it, nothing is due twice.
Messages leave through the outbox after commit: no network call happens while the batch holds its locks.

A batch that fails is retried one enrolment per transaction, so one lead's failure does not hold back the rest;
that enrolment is retried with backoff and, after ``MAX_ATTEMPTS``, ends with reason "failed", recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.journeys.messages import effect_of
from leads.events import DomainEvents, StageChanged
from leads.journeys.definition import Journey
from leads.journeys.plan import Plan, Record, plan_run
from leads.journeys.policy import SendPolicy
from leads.lifecycle import SYSTEM, allowed, transition
from storage.models import utcnow
from storage.repos.events import EventTx
from storage.repos.journey_effects import add_tasks, queue_messages
from storage.repos.journey_enrolments import Claimed, claim_due, postpone, save_runs
from storage.repos.journey_facts import lead_facts, recent_sends
from storage.repos.quadrant_actions import tag, untag
from storage.repos.stages import change_stages

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
BATCH = 500


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


@dataclass
class JourneyRunner:
    sessions: async_sessionmaker[AsyncSession]
    events: DomainEvents[EventTx]
    journeys: Sequence[Journey]
    policy: SendPolicy
    sandbox: bool
    base_url: str
    batch: int = BATCH
    budget_s: float = 20.0  # one job run stops claiming after this: the next tick goes on
    clock: Callable[[], datetime] = utcnow
    _by_id: dict[str, Journey] = field(init=False)

    def __post_init__(self) -> None:
        self._by_id = {j.id: j for j in self.journeys}

    async def run_due(self) -> int:
        """Run due steps batch after batch until none is due or the budget is spent; how many enrolments ran."""
        started, total = time.monotonic(), 0
        while time.monotonic() - started < self.budget_s:
            done = await self.run_batch(self.clock())
            total += done
            if done < self.batch:
                break
        if total:
            log.info("journey steps: %d enrolment(s) run", total)
        return total

    async def run_batch(self, now: datetime) -> int:
        try:
            async with self.sessions() as session, session.begin():
                claimed = await claim_due(session, now, self.batch)
                await self._apply(session, claimed, now)
                return len(claimed)
        except Exception:
            log.exception("a batch of journey steps failed: retrying its enrolments one by one")
        return await self._one_by_one(now)

    async def _one_by_one(self, now: datetime) -> int:
        async with self.sessions() as session, session.begin():
            ids = [c.enrolled.id for c in await claim_due(session, now, self.batch)]
        ran = 0
        for enrolment_id in ids:
            try:
                async with self.sessions() as session, session.begin():
                    claimed = await claim_due(session, now, 1, ids=[enrolment_id])
                    await self._apply(session, claimed, now)
                    ran += len(claimed)
            except Exception as exc:
                await self._failed(enrolment_id, now, exc)
        return ran

    async def _failed(self, enrolment_id: int, now: datetime, exc: Exception) -> None:
        log.warning("journey enrolment %d failed a step: %s", enrolment_id, type(exc).__name__)
        async with self.sessions() as session, session.begin():
            found = await claim_due(session, now, 1, ids=[enrolment_id])
            if not found:
                return
            c = found[0]
            attempts = c.attempts + 1
            if attempts < MAX_ATTEMPTS:
                await postpone(session, c.enrolled.id, c.enrolled.seq, attempts=attempts,
                               due_at=now + backoff(attempts), error=f"{type(exc).__name__}: {exc}")
                return
            record = Record(c.enrolled.seq + 1, ".".join(map(str, c.enrolled.position)), "exit", "failed",
                            f"failed:{type(exc).__name__}")
            plan = Plan((record,), c.enrolled.position, record.seq, "exited", "failed", None)
            await save_runs(session, [(c, plan)], {}, now)

    async def _apply(self, session: AsyncSession, claimed: Sequence[Claimed], now: datetime) -> None:
        if not claimed:
            return
        lead_ids = {c.enrolled.lead_id for c in claimed}
        facts = await lead_facts(session, lead_ids, now)
        sends = await recent_sends(session, lead_ids, now)
        runs: list[tuple[Claimed, Plan]] = []
        messages, tasks, keys = [], [], {}
        tags_add: list[tuple[int, str, datetime]] = []
        tags_remove: list[tuple[int, str]] = []
        moves: list[StageChanged] = []
        stages: dict[int, str] = {}  # a lead's stage after this batch's earlier moves (two journeys may move it)
        for c in claimed:
            e, journey, lead = c.enrolled, self._by_id.get(c.journey_id), facts.get(c.enrolled.lead_id)
            plan = plan_run(journey, e, lead.view if lead else None, now, self.policy, sends[e.lead_id])
            records = list(plan.records)
            for i, r in enumerate(records):
                if r.action is None or journey is None or lead is None:
                    continue
                eff = effect_of(r, journey, e.id, e.lead_id, lead, base_url=self.base_url, now=now,
                                tz=self.policy.quiet.tz)
                if eff.skipped:
                    records[i] = replace(r, outcome="skipped", reason=eff.skipped, action=None)
                elif eff.message is not None:
                    messages.append(eff.message)
                    keys[eff.message["idempotency_key"]] = (e.id, r.seq)
                    if r.outcome == "sent":
                        sends[e.lead_id][r.channel].append(now)  # the lead's other journeys count it too
                elif eff.task is not None:
                    tasks.append(eff.task)
                elif eff.tag is not None:
                    (tags_add.append((e.lead_id, eff.tag[1], now)) if eff.tag[0] == "add"
                     else tags_remove.append((e.lead_id, eff.tag[1])))
                elif eff.stage is not None:
                    before = stages.get(e.lead_id, lead.view.stage)
                    if before == eff.stage or not allowed(before, eff.stage, SYSTEM):
                        records[i] = replace(r, outcome="skipped", action=None,
                                             reason="stage_unchanged" if before == eff.stage else "stage_not_allowed")
                        continue
                    moves.append(self._move(e.lead_id, before, journey, eff.stage, now))
                    stages[e.lead_id] = eff.stage
            runs.append((c, replace(plan, records=tuple(records))))
        ids = await queue_messages(session, messages, sandbox=self.sandbox, now=now)
        outbox_ids = {keys[key]: row_id for key, row_id in ids.items()}
        await add_tasks(session, tasks)
        await save_runs(session, runs, outbox_ids, now)
        tx = EventTx(session, self.events)
        await untag(tx, tags_remove)
        await tag(tx, tags_add)
        await change_stages(tx, moves)

    @staticmethod
    def _move(lead_id: int, from_stage: str, journey: Journey, stage: str, now: datetime) -> StageChanged:
        move = transition(from_stage, stage, SYSTEM, f"培育旅程「{journey.name}」", f"journey:{journey.id}")
        return StageChanged.of(lead_id, move, now)
