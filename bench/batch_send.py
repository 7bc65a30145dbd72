"""Batch messages to a 100k-lead segment on PostgreSQL: how long the preview and the queueing take.

    python bench/batch_send.py [--leads 100000] [--members 20] [--database-url URL] [--keep-database]

Seeds (COPY) ``--leads`` leads, each a WeCom customer of one of ``--members`` members (a tenth also follow the
OA, a twentieth unsubscribed, a fiftieth already messaged today), into a new database migrated to head, then
measures in the same run, on the same filter (the segment: every lead):

- baseline: ``SELECT count(*)`` over the segment's filter (storage/repos/lead_search.py ``filtered``);
- preview: bot/batches/queue.py ``preview_batch`` (counts per channel, member and exclusion, samples);
- queue: ``queue_batch`` in one transaction (recipients by INSERT ... SELECT, one task and outbox row per member
  and ≤ 10,000 customers, sandbox) — what ``POST /api/batches`` does before it answers.

Targets (issue 14): preview ≤ 5 s, queue ≤ 30 s. Ratios are against the baseline measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

import asyncpg  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.batches.queue import preview_batch, queue_batch  # noqa: E402
from bot.outbox.enqueue import enqueue  # noqa: E402
from leads.batches.message import Message  # noqa: E402
from leads.lead_filters import LeadFilter  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Lead, Segment  # noqa: E402
from storage.repos.batch_audience import AudienceRules  # noqa: E402
from storage.repos.lead_search import filtered  # noqa: E402
from storage.settings import DatabaseConfig  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PREVIEW_TARGET_S, QUEUE_TARGET_S = 5.0, 30.0


def _copy_rows(rows: list[tuple[object, ...]]) -> io.BytesIO:
    out = io.StringIO()
    for row in rows:
        out.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    return io.BytesIO(out.getvalue().encode())


async def seed(dsn: str, leads: int, members: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        await conn.executemany(
            "INSERT INTO users (username, display_name, role, password_hash, wecom_userid, created_at, card_style) "
            "VALUES ($1, $2, 'sales', 'x', $3, $4, 'template_card')",
            [(f"member{m}", f"成员{m}", f"member{m}_wx", now) for m in range(members)])
        user_ids = [r[0] for r in await conn.fetch("SELECT id FROM users ORDER BY id")]
        rows = []
        for i in range(leads):
            consent = "revoked" if i % 23 == 0 else "unknown"
            rows.append((f"潜客{i}", "lead", consent, f'{{"wecom_owner": "member{i % members}_wx", '
                         f'"company": "公司{i % 997}"}}', now.isoformat(), now.isoformat(), user_ids[i % members]))
        await conn.copy_to_table("leads", source=_copy_rows(rows), columns=[
            "display_name", "stage", "consent", "profile", "created_at", "last_activity_at", "owner_user_id"])
        ids = [r[0] for r in await conn.fetch("SELECT id FROM leads ORDER BY id")]
        ident = [(lead_id, "wecom_external", "ww-bench", f"wm-{lead_id}", "t", now.isoformat()) for lead_id in ids]
        ident += [(lead_id, "oa_openid", "wx-bench", f"o-{lead_id}", "t", now.isoformat())
                  for n, lead_id in enumerate(ids) if n % 10 == 0]
        await conn.copy_to_table("identities", source=_copy_rows(ident),
                                 columns=["lead_id", "kind", "app", "value", "verified", "created_at"])
        # A fiftieth got a mass message today: the day's receive limit excludes them.
        seg = await conn.fetchval("INSERT INTO segments (name, query, created_at) VALUES ('earlier', '{}', $1) "
                                  "RETURNING id", now)
        batch = await conn.fetchval("INSERT INTO batches (segment_id, message, status, sandbox, counts, created_at) "
                                    "VALUES ($1, '{}', 'sent', false, '{}', $2) RETURNING id", seg, now)
        past = [(batch, lead_id, "wecom", "sent", "", (now - timedelta(hours=1)).isoformat(),
                 (now - timedelta(hours=1)).isoformat()) for n, lead_id in enumerate(ids) if n % 50 == 1]
        await conn.copy_to_table("batch_recipients", source=_copy_rows(past), columns=[
            "batch_id", "lead_id", "channel", "status", "reason", "created_at", "updated_at"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def rules(now: datetime) -> AudienceRules:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=8)
    return AudienceRules(period_start=start, receive_limit=1, week_ago=now - timedelta(days=7),
                         caps={"wecom": 3, "oa": 3}, oa_template=True)


async def measure(url: str) -> dict[str, float]:
    engine = create_engine(DatabaseConfig(url=url))
    sessions = session_factory(engine)
    f, now = LeadFilter(), datetime.now(UTC)
    out: dict[str, float] = {}
    try:
        async with sessions() as session:
            started = time.perf_counter()
            stmt = await filtered(session, select(func.count()).select_from(Lead), f, None)
            total = (await session.execute(stmt)).scalar_one()
            out["baseline_count"] = time.perf_counter() - started
            started = time.perf_counter()
            found = await preview_batch(session, f, None, rules(now))
            out["preview"] = time.perf_counter() - started
        print(f"segment: {total:,} leads; preview: {found.by_channel} recipients, excluded {found.by_reason}, "
              f"{len(found.by_member)} members", flush=True)
        async with sessions() as session, session.begin():
            segment = Segment(name=f"bench-{secrets.token_hex(3)}", query={})
            session.add(segment)
            await session.flush()
            started = time.perf_counter()
            queued = await queue_batch(session, enqueue, segment_id=segment.id, user_id=None,
                                       message=Message("{name}您好，{sender}为您准备了新品资料"), item=None, f=f,
                                       owners=None, rules=rules(now), sandbox=True, at=now)
        out["queue"] = time.perf_counter() - started  # the commit included
        print(f"queued batch {queued.id}: {queued.counts['channel']} in {len(queued.tasks)} WeCom tasks", flush=True)
    finally:
        await engine.dispose()
    return out


async def run(args: argparse.Namespace) -> int:
    name = f"leadrelay_bench_batch_{secrets.token_hex(4)}"
    url = args.database_url or f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    if not args.database_url:
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
    try:
        engine = create_engine(DatabaseConfig(url=url))
        await upgrade(engine)
        await engine.dispose()
        started = time.perf_counter()
        await seed(url.replace("+asyncpg", ""), args.leads, args.members)
        print(f"seeded {args.leads:,} leads across {args.members} members in {time.perf_counter() - started:.1f} s",
              flush=True)
        t = await measure(url)
    finally:
        if not args.database_url and not args.keep_database:
            admin = await asyncpg.connect(ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    base = t["baseline_count"]
    print(f"baseline COUNT(*) over the segment: {base:.3f} s")
    for step, target in (("preview", PREVIEW_TARGET_S), ("queue", QUEUE_TARGET_S)):
        verdict = "ok" if t[step] <= target else "OVER TARGET"
        print(f"{step}: {t[step]:.3f} s  ({t[step] / base:.1f}x baseline; target ≤ {target:.0f} s: {verdict})")
    return 0 if t["preview"] <= PREVIEW_TARGET_S and t["queue"] <= QUEUE_TARGET_S else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--members", type=int, default=20)
    p.add_argument("--database-url", help="an empty postgresql+asyncpg database (default: a new one, dropped)")
    p.add_argument("--keep-database", action="store_true")
    return asyncio.run(run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
