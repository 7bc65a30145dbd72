"""Routing MQLs in storage (storage/repos/routing.py, assignments.py): rules, caps, away and disabled members, the
default owner, fairness, and several processes routing at once (PostgreSQL) never double-assigning."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.config.handoff import RoutingConfig, build_routing
from bot.people.accounts import Who, disable
from leads.events import DomainEvents, LeadAssigned
from leads.routing import Member
from storage.db import create_engine, session_factory
from storage.models import Assignment, AssignmentEvent, Lead, TeamMember, Touchpoint, User
from storage.repos.assignments import assign_lead, pending_assignment
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.routing import route_lead, route_leads, team_lead_of
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from storage.settings import DatabaseConfig
from storage.tx import in_transaction

AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
ROUTING = build_routing({"rules": [
    {"team": "east", "region": ["上海", "浙江"], "name": "华东"},
    {"team": "ghost", "industry": "it"},  # no such team: skipped
    {"team": "hot", "quadrant": "sales_ready", "min_score": 70},
    {"team": "wecom", "channel": "wecom"},
], "default_owner": "boss"})


async def people(sessions: async_sessionmaker, team: str, specs: Sequence[dict[str, Any]]) -> list[int]:
    """A team and its members: each spec is set_member's flags plus role / weight / monthly_cap / disabled."""
    async with sessions() as s, s.begin():
        t = await add_team(s, team)
        ids = []
        for i, spec in enumerate(specs):
            u = await add_user(s, username=f"{team}{i}", role=spec.get("role", "sales"), password_hash="x")
            if spec.get("disabled"):
                u.disabled_at = AT - timedelta(days=1)
            await set_member(s, t.id, u.id, away=spec.get("away", False), capacity=spec.get("capacity", 0))
            await s.execute(update(TeamMember).where(TeamMember.team_id == t.id, TeamMember.user_id == u.id)
                            .values(weight=spec.get("weight", 0), monthly_cap=spec.get("monthly_cap", 0)))
            ids.append(u.id)
        return ids


async def boss(sessions: async_sessionmaker) -> int:
    async with sessions() as s, s.begin():
        return (await add_user(s, username="boss", role="team_lead", password_hash="x")).id


async def mqls(sessions: async_sessionmaker, n: int, *, profile: dict[str, Any] | None = None,
               channel: str | None = None, quadrant: str | None = None, motivation: float | None = None) -> list[int]:
    async with sessions() as s, s.begin():
        leads = [Lead(stage="mql", profile=profile or {}, quadrant=quadrant, motivation=motivation)
                 for _ in range(n)]
        s.add_all(leads)
        await s.flush()
        if channel:
            for lead in leads:  # the first touch decides the channel, a later one does not
                s.add(Touchpoint(lead_id=lead.id, kind="message", scene="", channel="oa",
                                 occurred_at=AT - timedelta(hours=1)))
                s.add(Touchpoint(lead_id=lead.id, kind="follow", scene="", channel=channel,
                                 occurred_at=AT - timedelta(hours=2)))
        return [lead.id for lead in leads]


async def balance(s: Any) -> dict[int, tuple[float, int]]:
    """user id -> (weight x virtual time, assignments held in any status): equal when nobody was lifted (fell
    two rounds behind), never below unless an update was lost."""
    rows = (await s.execute(select(TeamMember.user_id, TeamMember.weight, TeamMember.capacity,
                                   TeamMember.virtual_time))).all()
    counts = dict((await s.execute(select(Assignment.user_id, func.count()).group_by(Assignment.user_id))).all())
    return {r.user_id: (Member(r.user_id, weight=r.weight, capacity=r.capacity).share * r.virtual_time,
                        counts.get(r.user_id, 0)) for r in rows}


def assert_balanced(standing: dict[int, tuple[float, int]], *, lifted: bool = False) -> None:
    """``lifted``: many routings at once on few members can leave one two rounds behind (the others were
    held), and then lift it: its virtual time may be above its count, never below."""
    if lifted:
        assert all(weighted > count - 1e-6 for weighted, count in standing.values()), standing
    else:
        assert all(abs(weighted - count) < 1e-6 for weighted, count in standing.values()), standing


async def route(sessions: async_sessionmaker, lead_id: int, routing: RoutingConfig = ROUTING, *,
                at: datetime = AT, events: DomainEvents[EventTx] = NO_SUBSCRIBERS, **kw: Any) -> Any:
    async with sessions() as s, s.begin():
        return await route_lead(EventTx(s, events), lead_id, routing, at=at, **kw)


async def test_rules_in_order_unknown_teams_skipped_and_the_default_owner(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    [east] = await people(sessions, "east", [{}])
    [hot] = await people(sessions, "hot", [{}])
    [wecom] = await people(sessions, "wecom", [{}])
    owner = await boss(sessions)
    heard: list[LeadAssigned] = []

    async def note(tx: EventTx, events: Sequence[LeadAssigned]) -> None:
        heard.extend(events)

    listening = NO_SUBSCRIBERS.subscribe(LeadAssigned, note)
    [both] = await mqls(sessions, 1, profile={"region": "浙江"}, quadrant="sales_ready", motivation=90)
    [it_hot] = await mqls(sessions, 1, profile={"industry": "it"}, quadrant="sales_ready", motivation=70)
    [cold] = await mqls(sessions, 1, quadrant="sales_ready", motivation=69.9)
    [chat] = await mqls(sessions, 1, channel="wecom")
    [first_oa] = await mqls(sessions, 1, channel="oa")
    got = {lead: await route(sessions, lead, events=listening) for lead in (both, it_hot, cold, chat, first_oa)}
    assert [(got[x].user_id, got[x].rule) for x in (both, it_hot, cold, chat, first_oa)] == [
        (east, "华东"), (hot, "routing.rules[2]"), (owner, "routing.default_owner"), (wecom, "routing.rules[3]"),
        (owner, "routing.default_owner")]
    assert [e.lead_id for e in heard] == [both, it_hot, cold, chat, first_oa]
    assert heard[0] == LeadAssigned(both, got[both].id, east, "华东", AT, None, None)
    async with sessions() as s:
        owners = dict((await s.execute(select(Lead.id, Lead.owner_user_id))).all())
        kinds = (await s.execute(select(AssignmentEvent.kind, AssignmentEvent.detail)
                                 .where(AssignmentEvent.lead_id == both))).all()
    assert owners[both] == east and owners[cold] == owner
    assert kinds == [("assigned", {"rule": "华东", "user_id": east, "team_id": got[both].team_id,
                                   "previous_assignment_id": None})]
    nobody = RoutingConfig(rules=ROUTING.rules, default_owner="")
    [lost] = await mqls(sessions, 1)
    assert await route(sessions, lost, nobody) is None
    async with sessions() as s:
        assert await pending_assignment(s, lost) is None and (await s.get(Lead, lost)).owner_user_id is None


async def test_rerouting_supersedes_and_only_unassigned_keeps_the_pending_one(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    a, b = await people(sessions, "east", [{}, {}])
    [lead] = await mqls(sessions, 1, profile={"region": "上海"})
    first = await route(sessions, lead)
    assert (await route(sessions, lead, only_unassigned=True)) == first
    second = await route(sessions, lead, rule="sla.reassign", exclude_user_ids=frozenset({first.user_id}))
    assert second.user_id != first.user_id and {first.user_id, second.user_id} == {a, b}
    assert (second.rule, second.previous_id, second.status) == ("sla.reassign", first.id, "pending")
    assert second.reason.startswith("超时未处理，改派")
    async with sessions() as s:
        statuses = dict((await s.execute(select(Assignment.id, Assignment.status))).all())
    assert statuses == {first.id: "superseded", second.id: "pending"}
    # Everyone excluded and no default owner: nothing changes.
    nobody = RoutingConfig(rules=ROUTING.rules)
    assert await route(sessions, lead, nobody, exclude_user_ids=frozenset({a, b})) is None
    async with sessions() as s:
        assert (await pending_assignment(s, lead)) == second


async def test_daily_and_thirty_day_caps_count_every_assignment_in_the_window(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    daily, monthly, free = await people(sessions, "east", [{"capacity": 2, "weight": 100}, {"monthly_cap": 3,
                                                                                           "weight": 100}, {}])
    old = await mqls(sessions, 3)
    async with sessions() as s, s.begin():  # history: yesterday (China time) and 29 / 31 days ago
        rows = [(daily, AT - timedelta(hours=11)), (monthly, AT - timedelta(days=29)),
                (monthly, AT - timedelta(days=31))]
        for lead_id, (user, at) in zip(old, rows, strict=True):
            await s.execute(insert(Assignment).values(lead_id=lead_id, user_id=user, rule="x", status="returned",
                                                      assigned_at=at))
    fresh = await mqls(sessions, 12, profile={"region": "上海"})
    got = Counter()
    for lead in fresh:
        got[(await route(sessions, lead)).user_id] += 1
    # 10:00 in Beijing: the assignment at 23:00 yesterday is not today's; the one 29 days ago is in the window.
    assert got[daily] == 2 and got[monthly] == 2 and got[free] == 8
    tomorrow = AT + timedelta(days=1)
    [next_day] = await mqls(sessions, 1, profile={"region": "上海"})
    assert (await route(sessions, next_day, at=tomorrow)).user_id == daily  # a new day; furthest behind its share


async def test_away_disabled_and_non_sales_members_get_nothing(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    away, off, sdr, ok = await people(sessions, "east", [{"away": True}, {"disabled": True}, {"role": "sdr"}, {}])
    leads = await mqls(sessions, 20, profile={"region": "上海"})
    assert {(await route(sessions, lead)).user_id for lead in leads} == {ok}
    async with sessions() as s, s.begin():
        await s.execute(update(TeamMember).where(TeamMember.user_id == ok).values(away=True))
    [late] = await mqls(sessions, 1, profile={"region": "上海"})
    owner = await boss(sessions)
    routed = await route(sessions, late)
    assert (routed.user_id, routed.team_id, routed.rule) == (owner, None, "routing.default_owner")
    assert "团队「east」暂无可分配成员" in routed.reason
    del away, off, sdr


async def test_fairness_over_a_thousand_assignments(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    ids = await people(sessions, "east", [{"weight": 1}, {"weight": 2}, {"weight": 3}, {"weight": 4}])
    leads = await mqls(sessions, 1000, profile={"region": "上海"})
    for batch in range(0, 1000, 100):  # batches (a recompute's publish) and single routings share the virtual times
        async with sessions() as s, s.begin():
            await route_leads(EventTx(s, NO_SUBSCRIBERS), leads[batch:batch + 90], ROUTING, at=AT)
        for lead in leads[batch + 90:batch + 100]:
            await route(sessions, lead)
    async with sessions() as s:
        got = dict((await s.execute(select(Assignment.user_id, func.count()).group_by(Assignment.user_id))).all())
        standing = await balance(s)
    for user, share in zip(ids, (1, 2, 3, 4), strict=True):
        assert abs(got[user] - 100 * share) <= 5 * share, got
    assert_balanced(standing)


async def test_disabling_a_member_reroutes_their_pending_mqls(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    a, b = await people(sessions, "east", [{}, {}])
    leads = await mqls(sessions, 6, profile={"region": "上海"})
    for lead in leads:
        await route(sessions, lead)
    async with sessions() as s:
        held = (await s.execute(select(Assignment.lead_id).where(Assignment.user_id == a))).scalars().all()
    assert len(held) == 3
    async with sessions() as s, s.begin():
        user = await s.get(User, a)
        assert await disable(s, Who("admin"), user, routing=ROUTING)
    async with sessions() as s:
        pending = (await s.execute(select(Assignment.lead_id, Assignment.user_id, Assignment.rule)
                                   .where(Assignment.status == "pending"))).all()
        owners = set((await s.execute(select(Lead.owner_user_id))).scalars())
    assert {p.user_id for p in pending} == {b} and len(pending) == 6 and owners == {b}
    assert sorted(p.lead_id for p in pending if p.rule == "member_disabled") == sorted(held)
    async with sessions() as s, s.begin():  # disabled already: nothing moves again
        assert not await disable(s, Who("admin"), await s.get(User, a), routing=ROUTING)


async def test_team_lead_of(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    lead_a, member, lead_off = await people(sessions, "east", [{"role": "team_lead"}, {},
                                                               {"role": "team_lead", "disabled": True}])
    [lead_b] = await people(sessions, "west", [{"role": "team_lead"}])
    async with sessions() as s, s.begin():
        await set_member(s, (await s.execute(select(TeamMember.team_id).where(TeamMember.user_id == lead_b)))
                         .scalar_one(), member)
        assert await team_lead_of(s, member) == sorted([lead_a, lead_b])
        assert await team_lead_of(s, lead_a) == [lead_a]
        assert await team_lead_of(s, 10**9) == []
    del lead_off


async def test_assign_lead_refuses_a_second_pending_without_the_lock(engine: AsyncEngine) -> None:
    """The partial unique index is the last line: a pending assignment inserted behind assign_lead's back."""
    sessions = session_factory(engine)
    [a] = await people(sessions, "east", [{}])
    [lead] = await mqls(sessions, 1)
    async with sessions() as s, s.begin():
        await assign_lead(EventTx(s, NO_SUBSCRIBERS), lead, a, rule="manual", reason="", at=AT)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        async with sessions() as s, s.begin():
            await s.execute(insert(Assignment).values(lead_id=lead, user_id=a, rule="x", status="pending",
                                                      assigned_at=AT))


# -- several processes at once (PostgreSQL: SQLite has one writer) --------------------------------------------

async def _route_many(url: str, lead_ids: list[int], only_unassigned: bool) -> list[int]:
    engine = create_engine(DatabaseConfig(url=url))
    sessions = session_factory(engine)

    async def one(lead_id: int) -> int:
        async with sessions() as s, s.begin():
            row = await route_lead(EventTx(s, NO_SUBSCRIBERS), lead_id, ROUTING, at=AT,
                                   only_unassigned=only_unassigned)
            return 0 if row is None else row.id

    try:
        return list(await asyncio.gather(*(one(i) for i in lead_ids)))
    finally:
        await engine.dispose()


def _process(url: str, lead_ids: list[int], only_unassigned: bool) -> list[int]:
    return asyncio.run(_route_many(url, lead_ids, only_unassigned))


async def _check_one_pending_each(engine: AsyncEngine, lead_ids: list[int], caps: dict[int, int]) -> Counter[int]:
    async with session_factory(engine)() as s:
        pending = (await s.execute(select(Assignment.lead_id, Assignment.user_id)
                                   .where(Assignment.status == "pending"))).all()
        standing = await balance(s)
    assert sorted(p.lead_id for p in pending) == sorted(lead_ids)  # exactly one each
    per_user = Counter(p.user_id for p in pending)
    assert all(per_user[user] <= cap for user, cap in caps.items())
    assert_balanced(standing, lifted=True)  # each member's update happened under their lock: none was lost
    return per_user


async def test_concurrent_routing_on_postgres_never_double_assigns(engine: AsyncEngine, backend: Any) -> None:
    if not backend.is_production:
        pytest.skip("PostgreSQL: SQLite has one writer at a time")
    sessions = session_factory(engine)
    members = await people(sessions, "east", [{"capacity": 10}, {"capacity": 10}, {"weight": 3}])
    await boss(sessions)
    shared = await mqls(sessions, 30, profile={"region": "上海"})
    own = await mqls(sessions, 60, profile={"region": "上海"})
    # Two engines (separate connection pools) in this process, each routing every shared lead and half the rest.
    results = await asyncio.gather(_route_many(backend.database_url, shared + own[:30], True),
                                   _route_many(backend.database_url, shared + own[30:], True))
    per_user = await _check_one_pending_each(engine, shared + own, {members[0]: 10, members[1]: 10})
    assert sum(per_user.values()) == 90 and 0 not in results[0] + results[1]
    for x, y in zip(results[0][:30], results[1][:30], strict=True):
        assert x == y  # both saw the same assignment of the shared lead
    async with sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Assignment))).scalar_one() == 90


async def test_routing_from_real_processes_at_once_never_double_assigns(engine: AsyncEngine, backend: Any) -> None:
    if not backend.is_production:
        pytest.skip("PostgreSQL: SQLite has one writer at a time")
    sessions = session_factory(engine)
    members = await people(sessions, "east", [{"capacity": 7}, {}, {"weight": 2}])
    await boss(sessions)
    shared = await mqls(sessions, 40, profile={"region": "上海"})
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        loop = asyncio.get_running_loop()
        # Not only_unassigned: each process reassigns every lead; the leads' locks still leave one pending each.
        runs = [loop.run_in_executor(pool, _process, backend.database_url, shared, flag) for flag in (True, False)]
        await asyncio.gather(*runs)
    await _check_one_pending_each(engine, shared, {members[0]: 7})
    async with sessions() as s:
        total = (await s.execute(select(func.count()).select_from(Assignment))).scalar_one()
        today = (await s.execute(select(func.count()).select_from(Assignment)
                                 .where(Assignment.user_id == members[0]))).scalar_one()
    assert 40 <= total <= 80  # the second routing of a lead either reassigned it or found it pending
    assert today <= 7  # the daily cap counts superseded assignments too


async def test_batches_routing_to_two_teams_in_opposite_orders_all_land(engine: AsyncEngine, backend: Any) -> None:
    """Transactions of several MQLs, each routed by its own publish, the teams met in opposite orders: a wait
    that closes a circle is broken inside its savepoint and looked at again, a second rolls its transaction back
    to be run again (as the inbox and in_transaction do); every MQL lands once."""
    if not backend.is_production:
        pytest.skip("PostgreSQL: SQLite has one writer at a time")
    sessions = session_factory(engine)
    await people(sessions, "east", [{}, {"weight": 2}])
    await people(sessions, "hot", [{}, {}])
    await boss(sessions)
    east = await mqls(sessions, 24, profile={"region": "上海"})
    hot = await mqls(sessions, 24, quadrant="sales_ready", motivation=90)
    other = create_engine(DatabaseConfig(url=backend.database_url))

    async def batch(pool: AsyncEngine, leads: list[int]) -> None:
        async def work(s: Any) -> None:
            for lead in leads:
                assert await route_lead(EventTx(s, NO_SUBSCRIBERS), lead, ROUTING, at=AT) is not None

        await in_transaction(session_factory(pool), work, attempts=20)

    try:
        runs = []
        for i in range(6):  # east then hot, and hot then east, interleaved lead by lead
            a, b = east[i * 4:i * 4 + 4], hot[i * 4:i * 4 + 4]
            pairs = zip(a, b, strict=True) if i % 2 else zip(b, a, strict=True)
            runs.append(batch(engine if i % 2 else other, [lead for pair in pairs for lead in pair]))
        await asyncio.gather(*runs)
    finally:
        await other.dispose()
    async with sessions() as s:
        standing = await balance(s)
    await _check_one_pending_each(engine, east + hot, {})
    assert sum(count for _, count in standing.values()) == 48
