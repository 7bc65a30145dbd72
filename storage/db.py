"""Engine construction for both backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storage.settings import DatabaseConfig


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(cfg: DatabaseConfig) -> AsyncEngine:
    # hide_parameters: a failed statement's error (logged, raised) and ``echo`` would otherwise print its
    # bound values, i.e. phones, emails and names.
    if is_sqlite(cfg.url):
        # SQLite has one writer: a single pooled connection serialises writes in-process instead of
        # letting concurrent transactions fail with "database is locked".
        engine = create_async_engine(cfg.url, echo=cfg.echo, hide_parameters=True, pool_size=1, max_overflow=0,
                                     pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: with asyncpg it costs three round trips per checkout, i.e. per group commit. A dropped
    # connection instead fails its statement once; the pool replaces it and the inbox writer retries.
    return create_async_engine(cfg.url, echo=cfg.echo, hide_parameters=True, pool_size=cfg.pool_size,
                               max_overflow=cfg.pool_size, pool_recycle=1800)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an answered callback must survive a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """One round trip: raises when the database cannot be reached."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
