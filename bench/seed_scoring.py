"""Seed a PostgreSQL database for the scoring benchmarks: N leads, M touchpoints, stored scores, with COPY.

    python bench/seed_scoring.py --leads 1000000 --touchpoints 20000000 [--database-url URL] [--replace] [--console]

Without ``--database-url`` a new database ``leadrelay_bench_scoring_<random>`` is created (and kept: its
URL is printed, pass it to bench/scoring.py). The schema comes from the migrations; the touchpoint table's
indexes and foreign keys are dropped during the load and rebuilt after it (much faster than maintaining them
row by row), then the tables are vacuumed and analysed like a live database. Leads also get a stored score
from "previous rules" (another fingerprint, an older motivation) and that quadrant's tags, so a recompute
updates every row and moves a realistic share of leads between quadrants.

``--console`` (bench/seed_console.py) adds what the console lists and searches, from its own random generator
(bench/console_data.py; the scoring rows stay the same): display names, companies, owners in teams, consent,
last activity, OA OpenID / phone / email identities, and leads with exactly 2,000 touchpoints for the 360 page.
Every plain index of the loaded tables (the migrations' trigram indexes included) is dropped during the load and
rebuilt after it.
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

import console_data  # noqa: E402
import scoring_data as data  # noqa: E402

DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/leadrelay_bench_scoring_{run}"
CHUNK = 200_000
PREVIOUS_RULES = "0000previous0000"  # not a real fingerprint: every stored state counts as stale
_TP_COLUMNS = ["id", "lead_id", "kind", "scene", "channel", "occurred_at", "detail"]
_DROP = """ALTER TABLE touchpoints DROP CONSTRAINT fk_touchpoints_lead_id_leads,
  DROP CONSTRAINT fk_touchpoints_inbox_id_inbox, DROP CONSTRAINT uq_touchpoints_inbox_id_kind,
  DROP CONSTRAINT pk_touchpoints"""
_RESTORE = (
    "SET maintenance_work_mem = '1GB'",
    "CREATE UNIQUE INDEX pk_touchpoints ON touchpoints (id)",
    "CREATE UNIQUE INDEX uq_touchpoints_inbox_id_kind ON touchpoints (inbox_id, kind)",
    """ALTER TABLE touchpoints ADD CONSTRAINT pk_touchpoints PRIMARY KEY USING INDEX pk_touchpoints,
      ADD CONSTRAINT uq_touchpoints_inbox_id_kind UNIQUE USING INDEX uq_touchpoints_inbox_id_kind,
      ADD CONSTRAINT fk_touchpoints_lead_id_leads FOREIGN KEY (lead_id) REFERENCES leads (id),
      ADD CONSTRAINT fk_touchpoints_inbox_id_inbox FOREIGN KEY (inbox_id) REFERENCES inbox (id)""",
)
_LOADED = ("leads", "touchpoints", "identities")  # their plain indexes are rebuilt after the load
# Plain (not constraint-backing) indexes: whatever the migrations define, so new ones are handled too.
_PLAIN_INDEXES = """SELECT i.indexname, i.indexdef FROM pg_indexes i
  WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""
HEAVY_LEADS, HEAVY_TOUCHPOINTS = 20, 2_000  # leads for the 360 page: exactly this many touchpoints each
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


def lead_rows(seed: int, n: int, now: datetime, console: bool = False
              ) -> tuple[list[tuple], list[tuple], list[tuple], set[int], list[tuple]]:
    """Leads, their previous-rules scores and quadrant tags, the merged ids and (console) identities."""
    from bot.config.scoring import default_scoring
    from leads.scoring import MotivationState, ScoreModel

    model = ScoreModel(default_scoring().rules)
    rng, start, merged = random.Random(seed), data.start_time(now), data.merged_ids(seed, n)
    empty_state, scored_at = json.dumps(MotivationState().to_json()), now - timedelta(days=1)
    leads, scores, tags, identities = [], [], [], []
    extra_rng = random.Random(seed * 31 + 5)  # console columns: the scoring rows do not depend on them
    for lead_id in range(1, n + 1):
        profile = data.profile(rng)
        ability = model.ability(profile)
        created = start + timedelta(seconds=rng.random() * data.DAYS * 86_400)
        survivor = merged.get(lead_id)
        stage = "merged" if survivor else data.lead_stage(rng)
        name, consent, owner, active = None, "unknown", None, created
        if console:
            name, consent, owner, active = console_data.decorate(extra_rng, lead_id, profile, created, now)
            if not survivor:
                identities.extend(console_data.identities(extra_rng, lead_id, created))
        leads.append((lead_id, name, stage, consent, json.dumps(profile, ensure_ascii=False), created, active,
                      survivor, owner))
        if survivor:
            continue
        motivation = min(rng.lognormvariate(2.5, 1.2), 400.0)
        quadrant = model.rules.quadrant(ability, motivation)
        scores.append((lead_id, ability, motivation, quadrant, PREVIOUS_RULES, empty_state, scored_at))
        tags.extend((lead_id, a[4:], scored_at) for a in model.rules.actions[quadrant] if a.startswith("tag:"))
    return leads, scores, tags, set(merged), identities


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


async def parallel(url: str, statements: list[str], connections: int) -> None:
    """``statements`` spread over ``connections`` connections (index builds: one core each)."""
    queue = list(statements)

    async def worker() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn(url))
        try:
            await conn.execute("SET maintenance_work_mem = '512MB'")
            while queue:
                await conn.execute(queue.pop(0))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, connections))))


async def drop(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn(url).rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def plain_indexes(url: str) -> list[tuple[str, str]]:
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        return [(r[0], r[1]) for r in await conn.fetch(_PLAIN_INDEXES, list(_LOADED))]
    finally:
        await conn.close()


async def console_users(url: str) -> None:
    """The console's teams and their members (owners of the assigned leads), when not there yet."""
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM users WHERE username = 'bench_sales_01'"):
            return  # --replace: the lead tables were emptied, the users stay
        if await conn.fetchval("SELECT count(*) FROM users"):
            raise SystemExit("the database has users: the console seed needs user ids 1..50 (use a new database)")
        now = datetime.now(UTC)
        await conn.copy_records_to_table("users", records=[(*u, now) for u in console_data.users("!bench")],
                                         columns=["id", "username", "display_name", "role", "password_hash",
                                                  "created_at"])
        await conn.executemany("INSERT INTO teams (id, name) VALUES ($1, $2)",
                               [(t, f"bench_team_{t}") for t in range(1, console_data.TEAMS + 1)])
        await conn.copy_records_to_table("team_members", records=[(t, u, False, 0) for t, u in
                                                                  console_data.team_members()],
                                         columns=["team_id", "user_id", "away", "capacity"])
        for table in ("users", "teams"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    finally:
        await conn.close()


async def heavy_leads(url: str, count: int, per_lead: int) -> list[int]:
    """``count`` leads in stage ``lead`` get exactly ``per_lead`` touchpoints, taken from random other leads:
    spread over the whole table as in production (a lead's history arrives over months)."""
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        chosen = [r[0] for r in await conn.fetch(
            "SELECT l.id FROM leads l WHERE l.stage = 'lead' AND l.id % 997 = 0 ORDER BY l.id LIMIT $1", count)]
        total = await conn.fetchval("SELECT max(id) FROM touchpoints")
        rng = random.Random(count * 7 + per_lead)
        for lead_id in chosen:
            have = await conn.fetchval("SELECT count(*) FROM touchpoints WHERE lead_id = $1", lead_id)
            ids = rng.sample(range(1, total + 1), max(0, per_lead - have) * 2 + 200)  # spare: some are taken
            await conn.execute("""UPDATE touchpoints SET lead_id = $1 WHERE id IN (
                SELECT id FROM touchpoints WHERE id = ANY($2::bigint[]) AND lead_id <> ALL($4::bigint[]) LIMIT $3)""",
                               lead_id, ids, max(0, per_lead - have), chosen)
        for lead_id in chosen:  # none took another's: each has exactly per_lead
            assert await conn.fetchval("SELECT count(*) FROM touchpoints WHERE lead_id = $1", lead_id) == per_lead
        return chosen
    finally:
        await conn.close()


def seed(url: str, *, leads: int, touchpoints: int, seed_value: int = 1, procs: int = 2,
         replace: bool = False, console: bool = False) -> dict[str, float]:
    """Seed ``url``; returns seconds per phase."""
    global _CUM
    times, t0 = {}, time.perf_counter()
    asyncio.run(prepare(url, replace))
    indexes = asyncio.run(plain_indexes(url))
    asyncio.run(sql(url, *(f'DROP INDEX "{name}"' for name, _ in indexes)))
    if console:
        asyncio.run(console_users(url))
    now = datetime.now(UTC)
    lead_list, scores, tags, merged, identities = lead_rows(seed_value, leads, now, console)
    asyncio.run(_copy(url, "leads", lead_list, ["id", "display_name", "stage", "consent", "profile", "created_at",
                                                "last_activity_at", "merged_into_id", "owner_user_id"]))
    if identities:
        asyncio.run(_copy(url, "identities", identities, ["lead_id", "kind", "app", "value", "verified",
                                                          "created_at"]))
    asyncio.run(_copy(url, "lead_scores", scores, ["lead_id", "ability", "motivation", "quadrant", "rules", "state",
                                                   "scored_at"]))
    asyncio.run(_copy(url, "lead_tags", tags, ["lead_id", "tag", "created_at"]))
    del lead_list, scores, tags, identities
    times["leads"], t1 = time.perf_counter() - t0, time.perf_counter()
    _CUM = data.activity_weights(random.Random(seed_value + 2), leads, merged)
    asyncio.run(sql(url, _DROP))
    jobs = [(url, seed_value, touchpoints, w, procs, data.start_time(now)) for w in range(procs)]
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("fork")) as pool:
        copied = sum(pool.map(_copy_touchpoints, jobs))
    assert copied == touchpoints, (copied, touchpoints)
    times["touchpoints"], t2 = time.perf_counter() - t1, time.perf_counter()
    asyncio.run(sql(url, *_RESTORE))
    asyncio.run(parallel(url, [definition for _, definition in indexes], procs))
    asyncio.run(sql(url, *(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
                            for t in ("leads", "touchpoints", "identities"))))
    if console:
        asyncio.run(heavy_leads(url, min(HEAVY_LEADS, leads // 1000), HEAVY_TOUCHPOINTS))
    times["indexes"], t3 = time.perf_counter() - t2, time.perf_counter()
    asyncio.run(sql(url, "VACUUM ANALYZE leads, touchpoints, lead_scores, lead_tags, identities, users"))
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
    p.add_argument("--console", action="store_true", help="add the console's columns (bench/console_data.py)")
    args = p.parse_args(argv)
    url = args.database_url or DEFAULT_DB.format(run=secrets.token_hex(4))
    print(f"seeding {args.leads:,} leads and {args.touchpoints:,} touchpoints into {url}", flush=True)
    times = seed(url, leads=args.leads, touchpoints=args.touchpoints, seed_value=args.seed, procs=args.procs,
                 replace=args.replace, console=args.console)
    print("  ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()))
    print(f"database: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
