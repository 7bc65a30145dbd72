"""The hand-off SLA: remind -> reassign -> escalate, in business time, once, across restarts and processes.

Steps are driven two ways: through APScheduler's own SQLAlchemy job store with a fake "now" (``fire_due``: the
due jobs as the scheduler would load them, run with a controllable clock), and by the real scheduler, which
the tests make fire timers set a second ahead.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.handoff.sla import sla_timers, timer_row
from bot.handoff.sla_scheduler import sync_engine
from bot.handoff.sla_steps import RETRY_BASE_S, RETRYING, SKIPPED, SlaContext, run_step
from bot.keys import ENGINE, JOB_RUNNER, SLA_RUNNER
from leads.events import LeadAssigned
from storage.db import session_factory
from storage.models import Assignment, AssignmentEvent, Lead, OutboxMessage, SlaTimer, Team, TeamMember, User
from storage.repos.assignments import assign_lead
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.sla import add_timers, timer_times
from tests.support.backends import Backend
from tests.support.clock import Clock
from tests.support.helpers import make_config

CST = ZoneInfo("Asia/Shanghai")
FRIDAY_1755 = datetime(2026, 12, 4, 17, 55, tzinfo=CST)
ROUTING = {"rules": [{"team": "east"}]}


def cst(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 12, day, hh, mm, tzinfo=CST)


async def seed(engine: AsyncEngine) -> dict[str, int]:
    """Team east: sales A and B; team lead L (away: routing skips L, the escalation still reaches L)."""
    async with session_factory(engine)() as session, session.begin():
        users = {name: User(username=name, role=role, password_hash="x", wecom_userid=f"wx_{name}")
                 for name, role in (("a", "sales"), ("b", "sales"), ("l", "team_lead"), ("m", "manager"))}
        team, lead = Team(name="east"), Lead(display_name="王芳", stage="mql")
        session.add_all([*users.values(), team, lead])
        await session.flush()
        session.add_all([TeamMember(team_id=team.id, user_id=users[n].id, away=n == "l") for n in ("a", "b", "l")])
        return {**{n: u.id for n, u in users.items()}, "team": team.id, "lead": lead.id}


async def assign(engine: AsyncEngine, ids: dict[str, int], at: datetime, events=NO_SUBSCRIBERS) -> int:
    async with session_factory(engine)() as session, session.begin():
        row = await assign_lead(EventTx(session, events), ids["lead"], ids["a"], rule="routing.rules[0]",
                                reason="", at=at, team_id=ids["team"])
        return row.id


async def fire_due(engine: AsyncEngine, url: str, ctx: SlaContext, now: datetime) -> list[str]:
    """What the scheduler does at ``now``: load the due jobs from the store, remove them, run them."""
    sync = sync_engine(url)
    store = SQLAlchemyJobStore(engine=sync, tablename="sla_timers")
    store.start(AsyncIOScheduler(), "default")
    try:
        due = store.get_due_jobs(now)
        for job in due:
            store.remove_job(job.id)
    finally:
        sync.dispose()
    return [await job.func(ctx, *job.args, **job.kwargs) for job in due]


async def timeline(engine: AsyncEngine, lead_id: int) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(AssignmentEvent.kind, AssignmentEvent.assignment_id)
                                  .where(AssignmentEvent.lead_id == lead_id).order_by(AssignmentEvent.id))
        return [tuple(r) for r in rows]


async def app_texts(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(OutboxMessage.payload).where(OutboxMessage.method == "wecom.app_text")
                                  .order_by(OutboxMessage.id))
        return [(p["userid"], p["content"]) for (p,) in rows]


async def test_remind_then_reassign_then_escalate_in_business_time(backend: Backend, engine: AsyncEngine) -> None:
    config = make_config(backend, routing=ROUTING, sla={"holidays": ["2026-12-08"]})
    events = NO_SUBSCRIBERS.subscribe(LeadAssigned, sla_timers(config.sla))
    clock = Clock()
    ctx = SlaContext(sessions=session_factory(engine), events=events, config=config, clock=clock)
    ids = await seed(engine)
    first = await assign(engine, ids, FRIDAY_1755.astimezone(UTC), events)

    async with engine.connect() as conn:
        times = await timer_times(conn)
    assert times == {f"sla:{first}:remind": cst(7, 9, 10).timestamp(),
                     f"sla:{first}:reassign": cst(7, 9, 55).timestamp(),
                     f"sla:{first}:escalate": cst(7, 12, 55).timestamp()}

    async def at(moment: datetime) -> list[str]:
        clock.now = moment.astimezone(UTC)
        return await fire_due(engine, backend.database_url, ctx, moment)

    assert await at(cst(5, 12, 0)) == [] and await at(cst(7, 9, 9)) == []  # the weekend does not count
    assert await at(cst(7, 9, 10)) == ["reminded"]
    assert await at(cst(7, 9, 55)) == ["reassigned"]
    async with engine.connect() as conn:
        second = (await conn.execute(select(Assignment.id, Assignment.user_id, Assignment.rule, Assignment.previous_id)
                                     .where(Assignment.status == "pending"))).one()
        assert (second.user_id, second.rule, second.previous_id) == (ids["b"], "sla.reassign", first)
        times = await timer_times(conn)
    # B is reminded 15 minutes after the reassignment; the lead escalates 240 minutes after it was first pushed.
    assert times == {f"sla:{second.id}:remind": cst(7, 10, 10).timestamp(),
                     f"sla:{second.id}:escalate": cst(7, 12, 55).timestamp()}
    assert await at(cst(7, 10, 10)) == ["reminded"]
    assert await at(cst(7, 12, 54)) == []
    assert await at(cst(7, 12, 55)) == ["escalated"]

    assert await timeline(engine, ids["lead"]) == [("assigned", first), ("reminded", first), ("assigned", second.id),
                                                   ("reminded", second.id), ("escalated", second.id)]
    texts = await app_texts(engine)
    assert [u for u, _ in texts] == ["wx_a", "wx_b", "wx_l"]
    assert texts[0][1].startswith("提醒：线索「王芳」已等待 15 分钟，请尽快接受或退回")
    assert texts[0][1].endswith(f"/m/leads/{ids['lead']}")
    assert texts[2][1].startswith("升级：线索「王芳」")
    async with engine.connect() as conn:
        steps = dict((await conn.execute(select(Assignment.id, Assignment.sla_step))).all())
    assert steps == {first: 2, second.id: 3}

    # A timer that fires again (a leader hand-over, a retry) changes nothing.
    for step in ("remind", "reassign", "escalate"):
        assert await run_step(ctx, second.id, ids["lead"], step) == SKIPPED
        assert await run_step(ctx, first, ids["lead"], step) == SKIPPED
    assert len(await timeline(engine, ids["lead"])) == 5


async def test_a_holiday_and_a_decision(backend: Backend, engine: AsyncEngine) -> None:
    """Tuesday 8 December a holiday: Monday 17:55 + 15 min is Wednesday 09:10. Accepted leads are not reminded."""
    config = make_config(backend, routing=ROUTING, sla={"holidays": ["2026-12-08"]})
    events = NO_SUBSCRIBERS.subscribe(LeadAssigned, sla_timers(config.sla))
    ids = await seed(engine)
    first = await assign(engine, ids, cst(7, 17, 55), events)
    async with engine.connect() as conn:
        assert (await timer_times(conn))[f"sla:{first}:remind"] == cst(9, 9, 10).timestamp()
    async with session_factory(engine)() as session, session.begin():
        row = await session.get(Assignment, first)
        row.status = "accepted"
    ctx = SlaContext(sessions=session_factory(engine), events=events, config=config)
    assert await fire_due(engine, backend.database_url, ctx, cst(10, 9, 0)) == [SKIPPED] * 3
    assert await timeline(engine, ids["lead"]) == [("assigned", first)]


async def _wait_for(engine: AsyncEngine, lead_id: int, kinds: list[str], timeout: float) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = [k for k, _ in await timeline(engine, lead_id)]
        if got == kinds or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def _timers_soon(engine: AsyncEngine, assignment_id: int, lead_id: int, **delays: float) -> None:
    now = datetime.now(UTC)
    async with session_factory(engine)() as session, session.begin():
        await add_timers(session, [timer_row(assignment_id, lead_id, step, now + timedelta(seconds=s))
                                   for step, s in delays.items()])


async def test_the_real_scheduler_fires_a_timer_within_a_second(app_client, backend: Backend) -> None:
    client = await app_client(routing=ROUTING)
    app = client.server.app
    engine = app[ENGINE]
    ids = await seed(engine)
    first = await assign(engine, ids, datetime.now(UTC))
    await _timers_soon(engine, first, ids["lead"], remind=0.5)
    started = asyncio.get_running_loop().time()
    app[SLA_RUNNER].tick()  # what the leader's handoff_sla job does every few seconds
    assert await _wait_for(engine, ids["lead"], ["assigned", "reminded"], 3.0) == ["assigned", "reminded"]
    assert asyncio.get_running_loop().time() - started < 1.5
    async with engine.connect() as conn:
        assert (await conn.execute(select(SlaTimer.id))).all() == []  # run timers leave the store


async def test_timers_survive_a_restart(app_client, backend: Backend) -> None:
    old = await app_client(routing=ROUTING)
    engine = old.server.app[ENGINE]
    ids = await seed(engine)
    first = await assign(engine, ids, datetime.now(UTC))
    await _timers_soon(engine, first, ids["lead"], remind=1.0)
    assert not old.server.app[SLA_RUNNER].running  # no tick yet: the old process stops before it runs anything
    await old.close()

    new = await app_client(routing=ROUTING)
    engine = new.server.app[ENGINE]
    # The new process takes the leader lock; its handoff_sla job resumes the timers within a tick (5 s).
    assert await _wait_for(engine, ids["lead"], ["assigned", "reminded"], 15.0) == ["assigned", "reminded"]
    assert new.server.app[JOB_RUNNER].leader.holds() and new.server.app[SLA_RUNNER].running


async def test_two_processes_take_each_step_once(app_client, backend: Backend) -> None:
    if not backend.is_production:
        pytest.skip("two processes share PostgreSQL and Redis")
    one, two = await app_client(routing=ROUTING), await app_client(routing=ROUTING)
    engine = one.server.app[ENGINE]
    ids = await seed(engine)
    first = await assign(engine, ids, datetime.now(UTC))
    runners = [c.server.app[SLA_RUNNER] for c in (one, two)]
    results: list[str] = []
    for runner in runners:
        runner.scheduler.add_listener(lambda e: results.append(e.retval), EVENT_JOB_EXECUTED)
    await _timers_soon(engine, first, ids["lead"], remind=0.3, escalate=0.6)
    # The worst case, not the usual one: both schedulers running at once (as in a leader hand-over).
    for runner in runners:
        runner.tick()
    await asyncio.sleep(0.4)
    for runner in runners:
        runner.tick()
    got = await _wait_for(engine, ids["lead"], ["assigned", "reminded", "escalated"], 10.0)
    await asyncio.sleep(1.0)  # a second run, if any, would have landed by now
    assert [k for k, _ in await timeline(engine, ids["lead"])] == got == ["assigned", "reminded", "escalated"]
    assert sorted(r for r in results if r != SKIPPED) == ["escalated", "reminded"]
    assert [u for u, _ in await app_texts(engine)] == ["wx_a", "wx_l"]
    async with engine.connect() as conn:
        assert (await conn.execute(select(Assignment.sla_step))).scalar_one() == 3


class BrokenOnce:
    """A LeadAssigned subscriber whose service is out of reach the first time (the reassignment's transaction
    fails with it), then back."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, tx: EventTx, events: object) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("briefly unreachable")


async def test_a_step_that_fails_is_retried_later_and_happens_once(backend: Backend, engine: AsyncEngine) -> None:
    config = make_config(backend, routing=ROUTING)
    timers = NO_SUBSCRIBERS.subscribe(LeadAssigned, sla_timers(config.sla))
    broken = BrokenOnce()
    clock = Clock()
    ctx = SlaContext(sessions=session_factory(engine), events=timers.subscribe(LeadAssigned, broken), config=config,
                     clock=clock)
    ids = await seed(engine)
    first = await assign(engine, ids, FRIDAY_1755.astimezone(UTC), timers)

    async def at(moment: datetime) -> list[str]:
        clock.now = moment.astimezone(UTC)
        return await fire_due(engine, backend.database_url, ctx, moment)

    assert await at(cst(7, 9, 10)) == ["reminded"]
    # The reassignment fails: its transaction rolls back, and its timer is stored again, a backoff later.
    assert await at(cst(7, 9, 55)) == [RETRYING] and broken.calls == 1
    retry_at = cst(7, 9, 55) + timedelta(seconds=RETRY_BASE_S)
    async with engine.connect() as conn:
        assert (await timer_times(conn))[f"sla:{first}:reassign"] == retry_at.timestamp()
        assert (await conn.execute(select(Assignment.id, Assignment.sla_step))).all() == [(first, 1)]
    assert await timeline(engine, ids["lead"]) == [("assigned", first), ("reminded", first)]

    assert await at(retry_at - timedelta(seconds=1)) == []
    assert await at(retry_at) == ["reassigned"]
    async with engine.connect() as conn:
        second = (await conn.execute(select(Assignment.id, Assignment.user_id)
                                     .where(Assignment.status == "pending"))).one()
        times = await timer_times(conn)
    assert second.user_id == ids["b"]
    assert await timeline(engine, ids["lead"]) == [("assigned", first), ("reminded", first), ("assigned", second.id)]
    assert sorted(times) == [f"sla:{second.id}:escalate", f"sla:{second.id}:remind"]

    # A step with nothing left to do (the assignment was reassigned) is no failure: nothing is stored again.
    assert await run_step(ctx, first, ids["lead"], "reassign") == SKIPPED
    async with engine.connect() as conn:
        assert sorted(await timer_times(conn)) == sorted(times)
    assert len(await timeline(engine, ids["lead"])) == 3 and broken.calls == 2
