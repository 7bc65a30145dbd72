"""What an SLA timer does when it fires: remind the assignee, reassign to the next member, escalate to team leads.

Each step is one transaction: the lead's row lock (the lock routing takes first, so the two never wait on each
other in a circle), then the pending assignment's. A step takes effect only while the assignment it was set
for is still the lead's pending one and has not reached the step yet (``assignments.sla_step``): a lead accepted,
returned or reassigned since, or a timer fired twice (a leader hand-over, a retry), changes nothing. Notices go
through the outbox (``wecom.app_text``) and every step is on the lead's timeline (assignment_events).

APScheduler removes a one-shot timer when it fires, whatever the step does: a step that raises (the database
briefly unreachable, a subscriber's error) stores its timer again, under the same id, a backoff later (10 s
doubling to 5 min, ``MAX_ATTEMPTS`` runs in all); its transaction rolled back, so the retry starts afresh. A step
with nothing to do (the assignment decided) returns SKIPPED and is not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.handoff.sla import timer_id, timer_row
from bot.outbox.enqueue import enqueue
from leads.sla import ESCALATE, REASSIGN, REMIND, SLA_REASSIGN_RULE, STEP_NUMBER
from storage.models import utcnow
from storage.repos.assignments import AssignmentRow, add_assignment_event, lock_leads, pending_assignment
from storage.repos.events import EventTx
from storage.repos.routing import route_lead, team_lead_of
from storage.repos.sla import add_timers, advance_sla_step, lead_label, manager_ids, notice_users

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.config.core import Config
    from leads.events import DomainEvents

log = logging.getLogger(__name__)

# What run_step did (the job's return value; tests and logs read it).
REMINDED, REASSIGNED, UNROUTED, ESCALATED, SKIPPED = "reminded", "reassigned", "unrouted", "escalated", "skipped"
RETRYING = "retrying"  # the step failed; its timer is stored again (run_step)

RETRY_BASE_S, RETRY_MAX_S = 10.0, 300.0
MAX_ATTEMPTS = 10  # runs of one step in all (about 25 minutes of retries), then it is given up, loudly


@dataclass(frozen=True, slots=True)
class SlaContext:
    """What a step needs from the app; the scheduler's executor passes it to every timer's coroutine."""

    sessions: async_sessionmaker
    events: DomainEvents[EventTx]  # the app's registry: a reassignment publishes LeadAssigned (card, timers)
    config: Config
    clock: Callable[[], datetime] = field(default=utcnow)


def retry_delay(retry: int) -> float:
    """Seconds before retry number ``retry`` (1, 2, ...)."""
    return min(RETRY_BASE_S * 2 ** (retry - 1), RETRY_MAX_S)


async def run_step(ctx: SlaContext, assignment_id: int, lead_id: int, step: str, attempt: int = 0) -> str:
    """The timer's coroutine (stored by reference: ``bot.handoff.sla_steps:run_step``). ``attempt``: how many
    runs of this step failed before this one."""
    if step not in STEP_NUMBER:
        raise ValueError(f"unknown SLA step {step!r}")  # a bad timer row: no retry makes it good
    try:
        return await _run(ctx, assignment_id, lead_id, step)
    except Exception as exc:  # noqa: BLE001 - any failure: the timer is gone from the store unless stored again
        return await _retry(ctx, assignment_id, lead_id, step, attempt + 1, exc)


async def _retry(ctx: SlaContext, assignment_id: int, lead_id: int, step: str, retry: int, exc: Exception) -> str:
    # Ids and the exception's type only: its text may quote the data of the step (a lead's name, say).
    timer = timer_id(assignment_id, step)
    if retry >= MAX_ATTEMPTS:
        log.error("SLA timer %s failed %d times (last: %s): given up", timer, retry, type(exc).__name__)
        raise exc
    delay = retry_delay(retry)
    log.warning("SLA timer %s failed (%s): retry %d in %.0f s", timer, type(exc).__name__, retry, delay)
    try:
        async with ctx.sessions() as session, session.begin():
            await add_timers(session, [timer_row(assignment_id, lead_id, step, ctx.clock() + timedelta(seconds=delay),
                                                 retry)])
        return RETRYING
    except Exception as store_exc:  # noqa: BLE001 - the database is still out of reach
        # Waiting here instead keeps the step alive unless this process stops before the retry.
        log.warning("SLA timer %s: could not store the retry (%s); retrying in this process", timer,
                    type(store_exc).__name__)
    await asyncio.sleep(delay)
    return await run_step(ctx, assignment_id, lead_id, step, retry)


async def _run(ctx: SlaContext, assignment_id: int, lead_id: int, step: str) -> str:
    number = STEP_NUMBER[step]
    async with ctx.sessions() as session, session.begin():
        await lock_leads(session, [lead_id])
        current = await pending_assignment(session, lead_id, lock=True)
        if current is None or current.id != assignment_id or current.sla_step >= number:
            return SKIPPED
        now = ctx.clock()
        if not await advance_sla_step(session, assignment_id, number):
            return SKIPPED
        if step == REMIND:
            return await _remind(ctx, session, current, now)
        if step == REASSIGN:
            return await _reassign(ctx, EventTx(session, ctx.events), current, now)
        if step == ESCALATE:
            return await _escalate(ctx, session, current, now)
    raise ValueError(f"unknown SLA step {step!r}")


async def _remind(ctx: SlaContext, session: AsyncSession, current: AssignmentRow, now: datetime) -> str:
    minutes = ctx.config.sla.remind_after_min
    users = await notice_users(session, [current.user_id])
    wecom_userid = users.get(current.user_id, ("", None))[1]
    if wecom_userid:
        label = await lead_label(session, current.lead_id)
        text = f"提醒：线索「{label}」已等待 {minutes} 分钟，请尽快接受或退回：{_link(ctx, current.lead_id)}"
        await _notify(ctx, session, current, wecom_userid, text, key=f"sla:{current.id}:remind")
    await add_assignment_event(session, current.id, current.lead_id, "reminded", at=now,
                               detail={"step": REMIND, "after_min": minutes, "user_id": current.user_id,
                                       "notified": bool(wecom_userid)})
    return REMINDED


async def _reassign(ctx: SlaContext, tx: EventTx, current: AssignmentRow, now: datetime) -> str:
    new = await route_lead(tx, current.lead_id, ctx.config.routing, at=now, rule=SLA_REASSIGN_RULE,
                           exclude_user_ids=frozenset({current.user_id}))
    if new is None:
        # Nobody else is available: the lead stays with its holder and escalates on time.
        log.info("lead %s: SLA reassignment found no other member; assignment %s stays", current.lead_id, current.id)
        return UNROUTED
    return REASSIGNED  # the new assignment's "assigned" event (rule sla.reassign) is the timeline's record


async def _escalate(ctx: SlaContext, session: AsyncSession, current: AssignmentRow, now: datetime) -> str:
    minutes = ctx.config.sla.escalate_after_min
    leaders = [u for u in await team_lead_of(session, current.user_id) if u != current.user_id]
    to = leaders or [u for u in await manager_ids(session) if u != current.user_id]
    users = await notice_users(session, [current.user_id, *to])
    assignee = users.get(current.user_id, (f"#{current.user_id}", None))[0]
    label = await lead_label(session, current.lead_id)
    text = (f"升级：线索「{label}」推送后 {minutes} 分钟（工作时间）仍未被接受或退回，当前负责人 {assignee}，"
            f"请跟进或改派：{_link(ctx, current.lead_id)}")
    notified = []
    for user_id in to:
        wecom_userid = users.get(user_id, ("", None))[1]
        if wecom_userid:
            await _notify(ctx, session, current, wecom_userid, text, key=f"sla:{current.id}:escalate:{user_id}")
            notified.append(user_id)
    if not to:
        log.warning("lead %s: SLA escalation found no team lead and no manager", current.lead_id)
    await add_assignment_event(session, current.id, current.lead_id, "escalated", at=now,
                               detail={"step": ESCALATE, "after_min": minutes, "user_id": current.user_id,
                                       "to_user_ids": to, "notified_user_ids": notified,
                                       "via": "team_lead" if leaders else "manager"})
    return ESCALATED


async def _notify(ctx: SlaContext, session: AsyncSession, current: AssignmentRow, wecom_userid: str, text: str,
                  *, key: str) -> None:
    await enqueue(session, target="wecom", method="wecom.app_text",
                  payload={"userid": wecom_userid, "content": text}, idempotency_key=key,
                  sandbox=ctx.config.wechat.mode == "sandbox", lead_id=current.lead_id)


def _link(ctx: SlaContext, lead_id: int) -> str:
    return f"{ctx.config.server.public_url.rstrip('/')}/m/leads/{lead_id}"
