"""Smoke test of the console benchmark's seed (bench/seed_scoring.py --console) on a tiny PostgreSQL database:
the rows the benchmark's cases rely on exist, and the indexes dropped for the load come back."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from leads.lead_filters import CONSENTS
from tests.support.backends import PG_ADMIN_DSN

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import console_cases  # noqa: E402
import seed_scoring  # noqa: E402


async def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@pytest.fixture
def bench_url(redis_available: None) -> str:  # noqa: ARG001 - the same services as the suite
    name = f"leadrelay_test_benchseed_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        yield url
    finally:
        asyncio.run(seed_scoring.drop(url))


def test_console_seed_builds_what_the_cases_use(bench_url: str) -> None:
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename IN ('leads', 'touchpoints', 'identities')"
    asyncio.run(seed_scoring.prepare(bench_url, replace=False))
    dsn = seed_scoring.dsn(bench_url)
    migrated = {r[0] for r in asyncio.run(_fetch(dsn, indexes))}

    seed_scoring.seed(bench_url, leads=3_000, touchpoints=30_000, procs=2, console=True)

    assert {r[0] for r in asyncio.run(_fetch(dsn, indexes))} == migrated
    assert "ix_leads_display_name_trgm" in migrated
    heavy = asyncio.run(_fetch(dsn, "SELECT t.lead_id, count(*) FROM touchpoints t JOIN leads l ON l.id = t.lead_id "
                                    "WHERE l.stage = 'lead' GROUP BY t.lead_id HAVING count(*) = 2000"))
    assert {r[0] % 997 for r in heavy} == {0} and 1 <= len(heavy) <= 3  # at most one per 1,000 leads, in stage lead
    leads = asyncio.run(_fetch(dsn, "SELECT count(*) FILTER (WHERE display_name IS NULL), "
                                    "count(*) FILTER (WHERE profile::jsonb ? 'company'), "
                                    "count(*) FILTER (WHERE owner_user_id IS NOT NULL), "
                                    "array_agg(DISTINCT consent) FROM leads"))[0]
    assert leads[0] == 0 and 1_800 < leads[1] < 2_400 and 1_500 < leads[2] < 2_100
    assert set(leads[3]) == set(CONSENTS)
    kinds = dict(asyncio.run(_fetch(dsn, "SELECT kind, count(*) FROM identities GROUP BY kind")))
    assert set(kinds) == {"oa_openid", "phone", "email"} and 1_100 < kinds["phone"] < 1_600
    tags = {r[0] for r in asyncio.run(_fetch(dsn, "SELECT DISTINCT tag FROM lead_tags"))}
    assert set(console_cases.TAGS) <= tags
