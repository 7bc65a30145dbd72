"""Shared fixtures: every storage test runs on the embedded backend (SQLite + in-process Redis) and on
production (a PostgreSQL database created for this run + the real Redis server).

With CI=true an unreachable PostgreSQL or Redis fails the run instead of skipping those tests.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import jieba
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leads.intents import build_tokenizer
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Base
from storage.redis import create_redis
from storage.settings import DatabaseConfig
from tests.support.backends import IN_CI, PG_ADMIN_DSN, REDIS_URL, Backend


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is unreachable: {exc!r}"
    if IN_CI:
        pytest.fail(message + " (CI=true: the real services are required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped at the end."""
    name = f"leadrelay_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_available() -> None:
    async def ping() -> None:
        client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (OSError, aioredis.RedisError) as exc:
        _unavailable("Redis", exc)


async def _migrate(url: str) -> None:
    engine = create_engine(DatabaseConfig(url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Backend:
    prefix = f"lrtest:{uuid.uuid4().hex[:10]}:"
    if request.param == "embedded":
        db = tmp_path / "leadrelay.db"
        db.write_bytes(sqlite_template.read_bytes())
        return Backend("embedded", f"sqlite+aiosqlite:///{db}", "memory://", prefix)
    request.getfixturevalue("redis_available")
    url = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url))
    return Backend("production", url, REDIS_URL, prefix)


async def _truncate(url: str) -> None:
    engine = create_engine(DatabaseConfig(url=url))
    try:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(DatabaseConfig(url=backend.database_url))
    yield eng
    await eng.dispose()


@pytest.fixture
async def redis_client(backend: Backend) -> AsyncIterator[aioredis.Redis]:
    client = create_redis(backend.redis_url)
    yield client
    if backend.is_production:
        keys = [k async for k in client.scan_iter(match=backend.redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
def jieba_base() -> jieba.Tokenizer:
    """One loaded jieba dictionary for the run: apps copy it instead of reading it from disk (about 0.6 s each)."""
    return build_tokenizer([])
