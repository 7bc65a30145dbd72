"""The journey engine's throughput: due steps a second on PostgreSQL in sandbox mode, idempotency checked after.

    python bench/journeys.py [--leads 20000] [--workers 1,2] [--batch 500] [--database-url URL]

Seeds --leads leads (OA followers, consent granted) enrolled in the shipped welcome journey
(deploy/journeys.example.toml), all due now: each run reads the leads' facts, sends the welcome template (an
outbox row, "sandboxed"), records the step and the wait, and moves the enrolment to tomorrow 10:00. Quiet hours
are off so the clock of the day does not decide. --workers runners share the work as processes do (each claims
with FOR UPDATE SKIP LOCKED). The baseline, measured in the same run on the same rows, claims the due
enrolments the same way and only moves their due time: what touching each due row costs at least, so the ratio
says what the engine adds on top. After each layout: one outbox row and one step record per enrolment, or the
run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import tomllib
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for _p in (str(ROOT), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import callback as cb  # noqa: E402

RAW = tomllib.loads((ROOT / "deploy/journeys.example.toml").read_text(encoding="utf-8"))


def _welcome():  # noqa: ANN202 - bot.config types, imported late
    from bot.config.journeys import build_journeys

    return next(j for j in build_journeys(RAW["journeys"]) if j.id == "welcome")


async def _seed(url: str, leads: int) -> None:
    from leads.journeys.plan import fingerprint
    from storage.db import create_engine
    from storage.migrate import upgrade
    from storage.settings import DatabaseConfig

    engine = create_engine(DatabaseConfig(url=url))
    await upgrade(engine)
    await engine.dispose()
    version = fingerprint(_welcome())
    await cb._pg(
        cb._asyncpg_dsn(url),
        "TRUNCATE journey_steps, journey_enrolments, outbox, identities, leads RESTART IDENTITY CASCADE",
        "INSERT INTO leads (display_name, stage, consent, profile, created_at, last_activity_at) "
        f"SELECT '客户' || n, 'lead', 'granted', '{{\"oa_following\": true, \"city\": \"上海\"}}'::json, now(), now() "
        f"FROM generate_series(1, {leads}) n",
        "INSERT INTO identities (lead_id, kind, app, value, verified, created_at) "
        "SELECT id, 'oa_openid', '', 'o_bench_' || id, false, now() FROM leads",
        "INSERT INTO journey_enrolments (journey_id, lead_id, version, trigger, position, seq, status, reason, "
        "enrolled_at, due_at, attempts) "
        f"SELECT 'welcome', id, '{version}', 'form:bench', '0', 0, 'active', '', now(), now(), 0 FROM leads",
        "ANALYZE",
    )


async def _run(url: str, workers: int, batch: int, baseline: bool) -> float:
    from sqlalchemy import text

    from bot.config.journeys import build_nurture
    from bot.journeys.runner import JourneyRunner
    from storage.db import create_engine, session_factory
    from storage.models import utcnow
    from storage.repos.events import NO_SUBSCRIBERS
    from storage.settings import DatabaseConfig

    engine = create_engine(DatabaseConfig(url=url, pool_size=workers))
    sessions = session_factory(engine)
    policy = build_nurture({**RAW["nurture"], "quiet_hours": ""}).send_policy()
    touch = text("UPDATE journey_enrolments SET due_at = now() + interval '1 day', seq = seq + 1 WHERE id IN ("
                 "SELECT id FROM journey_enrolments WHERE status = 'active' AND due_at <= :now ORDER BY due_at "
                 "LIMIT :n FOR UPDATE SKIP LOCKED)")

    async def worker() -> None:
        runner = JourneyRunner(sessions, NO_SUBSCRIBERS, [_welcome()], policy, sandbox=True,
                               base_url="https://leadrelay.example", batch=batch, budget_s=3600)
        while True:
            if baseline:
                async with sessions() as session, session.begin():
                    done = (await session.execute(touch, {"now": utcnow(), "n": batch})).rowcount
            else:
                done = await runner.run_batch(utcnow())
            if done == 0:
                return

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def _check(url: str, leads: int) -> None:
    dsn = cb._asyncpg_dsn(url)
    (row,) = await cb._pg(dsn, fetch=(
        "SELECT (SELECT count(*) FROM outbox WHERE method = 'oa.template' AND status = 'sandboxed'), "
        "(SELECT count(DISTINCT idempotency_key) FROM outbox), "
        "(SELECT count(*) FROM journey_steps WHERE kind = 'action' AND outcome = 'sent'), "
        "(SELECT count(*) FROM journey_enrolments WHERE position = '2' AND seq = 2)"))
    if tuple(row) != (leads, leads, leads, leads):
        raise SystemExit(f"idempotency broken: outbox, keys, sent records, moved enrolments = {tuple(row)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leads", type=int, default=20_000)
    p.add_argument("--workers", default="1,2", help="runner layouts: concurrent runners sharing the due steps")
    p.add_argument("--batch", type=int, default=500, help="enrolments per transaction ([nurture] batch_size)")
    p.add_argument("--database-url", help="a PostgreSQL database to create (dropped at the end)")
    args = p.parse_args(argv)
    url = args.database_url or cb.DEFAULT_DB.format(run=secrets.token_hex(4))
    cb.create_database(url, True)
    try:
        print(f"journey engine: {args.leads:,} due steps (welcome: template + wait), batch {args.batch}, sandbox")
        print(f"{'runners':>8} {'baseline/s':>12} {'engine/s':>10} {'ratio':>7}  idempotency")
        for workers in (int(w) for w in args.workers.split(",")):
            asyncio.run(_seed(url, args.leads))
            base_s = asyncio.run(_run(url, workers, args.batch, baseline=True))
            asyncio.run(_seed(url, args.leads))
            run_s = asyncio.run(_run(url, workers, args.batch, baseline=False))
            asyncio.run(_check(url, args.leads))
            base, rate = args.leads / base_s, args.leads / run_s
            print(f"{workers:>8} {base:>12,.0f} {rate:>10,.0f} {rate / base:>6.2f}x  ok (one message and one "
                  "record per step)", flush=True)
    finally:
        cb.drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
