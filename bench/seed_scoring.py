"""Seed a PostgreSQL database for the scoring benchmarks: N leads, M touchpoints, stored scores, with COPY.

    python bench/seed_scoring.py --leads 1000000 --touchpoints 20000000 [--database-url URL] [--replace]

Without ``--database-url`` a new database ``leadrelay_bench_scoring_<random>`` is created (and kept: its
URL is printed, pass it to bench/scoring.py). The schema comes from the migrations; the touchpoint table's
indexes and foreign keys are dropped during the load and rebuilt after it (much faster than maintaining them
row by row), then the tables are vacuumed and analysed like a live database. Leads also get a stored score
from "previous rules" (another fingerprint, an older motivation) and that quadrant's tags, so a recompute
updates every row and moves a realistic share of leads between quadrants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _path in (str(REPO), str(BENCH_DIR)):
    if _path not in sys.path:  # `python bench/seed_scoring.py` from anywhere, installed or not
        sys.path.insert(0, _path)

import scoring_data as data  # noqa: E402

DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/leadrelay_bench_scoring_{run}"
CHUNK = 200_000
PREVIOUS_RULES = "0000previous0000"  # not a real fingerprint: every stored state counts as stale
_TP_COLUMNS = ["id", "lead_id", "kind", "scene", "channel", "occurred_at", "detail"]
_DROP = """ALTER TABLE touchpoints DROP CONSTRAINT fk_touchpoints_lead_id_leads,
  DROP CONSTRAINT fk_touchpoints_inbox_id_inbox, DROP CONSTRAINT uq_touchpoints_inbox_id_kind,
  DROP CONSTRAINT pk_touchpoints;
DROP INDEX ix_touchpoints_lead_id_occurred_at"""
_RESTORE = (
    "SET maintenance_work_mem = '1GB'",
    "CREATE UNIQUE INDEX pk_touchpoints ON touchpoints (id)",
    "CREATE UNIQUE INDEX uq_touchpoints_inbox_id_kind ON touchpoints (inbox_id, kind)",
    "CREATE INDEX ix_touchpoints_lead_id_occurred_at ON touchpoints (lead_id, occurred_at)",
    """ALTER TABLE touchpoints ADD CONSTRAINT pk_touchpoints PRIMARY KEY USING INDEX pk_touchpoints,
      ADD CONSTRAINT uq_touchpoints_inbox_id_kind UNIQUE USING INDEX uq_touchpoints_inbox_id_kind,
      ADD CONSTRAINT fk_touchpoints_lead_id_leads FOREIGN KEY (lead_id) REFERENCES leads (id),
      ADD CONSTRAINT fk_touchpoints_inbox_id_inbox FOREIGN KEY (inbox_id) REFERENCES inbox (id)""",
)
_CUM: list[float] = []  # set before the worker processes fork


def dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    return (parsed.set(database=database) if database else parsed).render_as_string(hide_password=False)


async def prepare(url: str, replace: bool) -> None:
    """Create the database if it does not exist, migrate it, and make sure it holds no leads."""
    import asyncpg

    from storage.db import create_engine
    from storage.migrate import upgrade
    from storage.settings import DatabaseConfig

    name = dsn(url).rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn(url, "postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    engine = create_engine(DatabaseConfig(url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(dsn(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM (SELECT 1 FROM leads LIMIT 1) x"):
            if not replace:
                raise SystemExit(f"{name} already holds leads: pass --replace to empty it first")
            await conn.execute("TRUNCATE leads, touchpoints, lead_scores, lead_tags, stage_transitions, "
                               "score_recompute_runs, identities, lead_merges RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def lead_rows(seed: int, n: int, now: datetime) -> tuple[list[tuple], list[tuple], list[tuple], set[int]]:
    """Leads, their previous-rules scores and quadrant tags, and the merged ids."""
    from bot.config.scoring import default_scoring
    from leads.scoring import MotivationState, ScoreModel

    model = ScoreModel(default_scoring().rules)
    rng, start, merged = random.Random(seed), data.start_time(now), data.merged_ids(seed, n)
    empty_state, scored_at = json.dumps(MotivationState().to_json()), now - timedelta(days=1)
    leads, scores, tags = [], [], []
    for lead_id in range(1, n + 1):
        profile = data.profile(rng)
        created = start + timedelta(seconds=rng.random() * data.DAYS * 86_400)
        survivor = merged.get(lead_id)
        stage = "merged" if survivor else data.lead_stage(rng)
        leads.append((lead_id, None, stage, "unknown", json.dumps(profile, ensure_ascii=False), created, created,
                      survivor))
        if survivor:
            continue
        ability, motivation = model.ability(profile), min(rng.lognormvariate(2.5, 1.2), 400.0)
        quadrant = model.rules.quadrant(ability, motivation)
        scores.append((lead_id, ability, motivation, quadrant, PREVIOUS_RULES, empty_state, scored_at))
        tags.extend((lead_id, a[4:], scored_at) for a in model.rules.actions[quadrant] if a.startswith("tag:"))
    return leads, scores, tags, set(merged)


def _copy_touchpoints(job: tuple[str, int, int, int, int, datetime]) -> int:
    url, seed, total, worker, workers, start = job

    async def run() -> int:
        import asyncpg

        conn, done = await asyncpg.connect(dsn(url)), 0
        try:
            for first in range(1 + worker * CHUNK, total + 1, workers * CHUNK):
                rows = data.touchpoint_rows(seed, first, min(CHUNK, total - first + 1), total, _CUM, start)
                await conn.copy_records_to_table("touchpoints", records=rows, columns=_TP_COLUMNS)
                done += len(rows)
        finally:
            await conn.close()
        return done

    return asyncio.run(run())


async def _copy(url: str, table: str, rows: list[tuple], columns: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.copy_records_to_table(table, records=rows, columns=columns)
    finally:
        await conn.close()


async def sql(url: str, *statements: str, args: tuple = ()) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement, *args) if args else await conn.execute(statement)
    finally:
        await conn.close()


async def drop(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn(url).rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def seed(url: str, *, leads: int, touchpoints: int, seed_value: int = 1, procs: int = 2,
         replace: bool = False) -> dict[str, float]:
    """Seed ``url``; returns seconds per phase."""
    global _CUM
    times, t0 = {}, time.perf_counter()
    asyncio.run(prepare(url, replace))
    now = datetime.now(UTC)
    lead_list, scores, tags, merged = lead_rows(seed_value, leads, now)
    asyncio.run(_copy(url, "leads", lead_list, ["id", "display_name", "stage", "consent", "profile", "created_at",
                                                "last_activity_at", "merged_into_id"]))
    asyncio.run(_copy(url, "lead_scores", scores, ["lead_id", "ability", "motivation", "quadrant", "rules", "state",
                                                   "scored_at"]))
    asyncio.run(_copy(url, "lead_tags", tags, ["lead_id", "tag", "created_at"]))
    del lead_list, scores, tags
    times["leads"], t1 = time.perf_counter() - t0, time.perf_counter()
    _CUM = data.activity_weights(random.Random(seed_value + 2), leads, merged)
    asyncio.run(sql(url, _DROP))
    jobs = [(url, seed_value, touchpoints, w, procs, data.start_time(now)) for w in range(procs)]
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("fork")) as pool:
        copied = sum(pool.map(_copy_touchpoints, jobs))
    assert copied == touchpoints, (copied, touchpoints)
    times["touchpoints"], t2 = time.perf_counter() - t1, time.perf_counter()
    asyncio.run(sql(url, *_RESTORE))
    asyncio.run(sql(url, *(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
                            for t in ("leads", "touchpoints"))))
    times["indexes"], t3 = time.perf_counter() - t2, time.perf_counter()
    asyncio.run(sql(url, "VACUUM ANALYZE leads, touchpoints, lead_scores, lead_tags"))
    times["vacuum"], times["total"] = time.perf_counter() - t3, time.perf_counter() - t0
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--touchpoints", type=int, default=20_000_000)
    p.add_argument("--database-url", help="postgresql+asyncpg URL (created when missing); default: a new database")
    p.add_argument("--replace", action="store_true", help="empty the database's lead tables first")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--procs", type=int, default=2, help="processes generating and copying touchpoints")
    args = p.parse_args(argv)
    url = args.database_url or DEFAULT_DB.format(run=secrets.token_hex(4))
    print(f"seeding {args.leads:,} leads and {args.touchpoints:,} touchpoints into {url}", flush=True)
    times = seed(url, leads=args.leads, touchpoints=args.touchpoints, seed_value=args.seed, procs=args.procs,
                 replace=args.replace)
    print("  ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()))
    print(f"database: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
