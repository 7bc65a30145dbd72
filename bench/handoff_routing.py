"""bench/handoff.py routing: route_lead throughput on PostgreSQL, one transaction per MQL (as the BecameMQL
subscriber runs it), from several concurrent sessions.

Per layout the MQLs are spread over N teams (one rule per team, matching the lead's region): with one team every
routing competes for the same members' row locks (each takes the first one nobody holds), the worst case. The
fairness column compares each member's assignments with their weighted share. The baseline is the same number
of transactions that only lock the lead row and write its owner (what any hand-off costs at least), so the ratio
says what routing adds on top of that.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import callback as cb

REGIONS = ("华东", "华南", "华北", "西南", "华中", "东北", "西北", "港澳台")


async def _seed(url: str, leads: int, teams: int, members: int) -> list[int]:
    import asyncpg

    from storage.db import create_engine
    from storage.migrate import upgrade
    from storage.settings import DatabaseConfig

    engine = create_engine(DatabaseConfig(url=url))
    await upgrade(engine)
    await engine.dispose()
    conn = await asyncpg.connect(cb._asyncpg_dsn(url))
    try:
        await conn.execute("TRUNCATE assignment_events, assignments, team_members, teams, leads, users "
                           "RESTART IDENTITY CASCADE")
        await conn.execute(
            "INSERT INTO users (username, display_name, role, password_hash, card_style, created_at) "
            "SELECT 'bench_sales_' || n, '销售' || n, 'sales', '!', 'template_card', now() "
            "FROM generate_series(1, $1) n", teams * members)
        await conn.execute("INSERT INTO teams (name) SELECT 'bench_team_' || t FROM generate_series(1, $1) t", teams)
        await conn.execute(
            "INSERT INTO team_members (team_id, user_id, away, capacity, monthly_cap, weight, virtual_time) "
            "SELECT 1 + (n - 1) / $2, n, false, 0, 0, 1 + n % 3, 0 FROM generate_series(1, $1) n",
            teams * members, members)
        await conn.execute(
            "INSERT INTO leads (display_name, stage, consent, profile, created_at, last_activity_at) "
            "SELECT '线索' || n, 'mql', 'unknown', json_build_object('region', ($2::text[])[1 + n % $3]), now(), "
            "now() FROM generate_series(1, $1) n", leads, list(REGIONS[:teams]), teams)
        await conn.execute("ANALYZE")
        return [r[0] for r in await conn.fetch("SELECT id FROM leads ORDER BY id")]
    finally:
        await conn.close()


def _routing(teams: int):  # noqa: ANN202 - bot.config types, imported late
    from bot.config.handoff import RoutingConfig, RoutingRule

    return RoutingConfig(rules=tuple(RoutingRule(team=f"bench_team_{t + 1}", match={"region": (REGIONS[t],)},
                                                 name=f"{REGIONS[t]}线索") for t in range(teams)))


async def _drive(url: str, lead_ids: list[int], workers: int, routing, baseline: bool,  # noqa: ANN001
                 batch: int = 1) -> tuple[float, int]:
    """``batch`` MQLs per transaction, each routed by its own call (as the BecameMQL subscriber hears the MQLs
    of an inbox batch, ``inbox.process_batch`` events per transaction): each member a batch is given a lead
    stays locked until the batch commits."""
    from sqlalchemy import text

    from storage.db import create_engine, session_factory
    from storage.repos.events import NO_SUBSCRIBERS, EventTx
    from storage.repos.routing import route_lead
    from storage.settings import DatabaseConfig
    from storage.tx import in_transaction

    engine = create_engine(DatabaseConfig(url=url, pool_size=workers))
    sessions, queue, routed = session_factory(engine), list(reversed(lead_ids)), [0]
    own = text("UPDATE leads SET owner_user_id = 1 WHERE id = (SELECT id FROM leads WHERE id = :id FOR UPDATE)")

    async def worker() -> None:
        while queue:
            taken = [queue.pop() for _ in range(min(batch, len(queue)))]

            async def work(session: Any, taken: list[int] = taken) -> int:
                n = 0
                for lead_id in taken:
                    if baseline:
                        await session.execute(own, {"id": lead_id})
                        n += 1
                    elif await route_lead(EventTx(session, NO_SUBSCRIBERS), lead_id, routing, at=datetime.now(UTC),
                                          only_unassigned=True) is not None:  # as the BecameMQL subscriber does
                        n += 1
                return n

            # A batch whose routing waited in a circle with another is run again (storage.tx.Retry), as the
            # inbox runs it again.
            n = await in_transaction(sessions, work, attempts=50)
            routed[0] += n  # not "+= await": that reads the total before the wait and loses the others' counts

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - started, routed[0]
    finally:
        await engine.dispose()


async def _fairness(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(cb._asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT m.team_id, m.user_id, 1 + m.user_id % 3 AS weight, count(a.id) AS n FROM team_members m "
            "LEFT JOIN assignments a ON a.user_id = m.user_id GROUP BY 1, 2 ORDER BY 1, 2")
    finally:
        await conn.close()
    worst = 0.0
    for team in {r["team_id"] for r in rows}:
        members = [r for r in rows if r["team_id"] == team]
        total, weights = sum(r["n"] for r in members), sum(r["weight"] for r in members)
        for r in members:
            share = r["weight"] / weights * total
            worst = max(worst, abs(r["n"] - share) / share if share else 0.0)
    return f"worst member off its weighted share by {worst * 100:.1f}%"


def run(args: argparse.Namespace) -> int:
    url = args.database_url or cb.DEFAULT_DB.format(run=secrets.token_hex(4))
    cb.create_database(url, True)
    status, rows = 0, []
    try:
        for teams in args.layouts:
            if not 1 <= teams <= len(REGIONS):
                raise SystemExit(f"--teams: 1..{len(REGIONS)}")
            base_ids = asyncio.run(_seed(url, args.leads, teams, args.members))
            base_s, _ = asyncio.run(_drive(url, base_ids, args.workers, None, baseline=True, batch=args.batch))
            ids = asyncio.run(_seed(url, args.leads, teams, args.members))
            seconds, routed = asyncio.run(_drive(url, ids, args.workers, _routing(teams), baseline=False,
                                                batch=args.batch))
            fair = asyncio.run(_fairness(url))
            per_min, base_per_min = routed / seconds * 60, len(base_ids) / base_s * 60
            status |= routed != len(ids) or per_min < 10_000
            rows.append((teams, routed, per_min, base_per_min, fair))
            print(f"  {teams} team(s): {routed:,} of {len(ids):,} routed in {seconds:.1f} s", flush=True)
    finally:
        if not args.keep_database:
            cb.drop_database(url)
    per_tx = "one transaction per MQL" if args.batch == 1 else f"{args.batch} MQLs per transaction"
    print(f"\nroute_lead, {per_tx}, {args.workers} sessions, {args.members} members per team "
          "(weights 1-3); baseline: the same transactions locking the lead and setting its owner only")
    print("teams  routed   assignments/min  baseline/min  routing vs baseline  >=10,000/min  fairness")
    for teams, routed, per_min, base, fair in rows:
        print(f"{teams:>5}  {routed:>6,}  {per_min:>15,.0f}  {base:>12,.0f}  {per_min / base:>18.2f}x  "
              f"{'met' if per_min >= 10_000 else 'NOT met':>12}  {fair}")
    return int(status)
