"""Building configs for tests, signing what WeChat sends, and reading back what the bot stored."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.core import Config, build_config
from bot.ingress.simulate import OASimulator, WeComSimulator
from storage.models import Identity, InboxEvent, Lead, Touchpoint
from tests.support.backends import Backend

OA_APP_ID = "wx49f0ab532d5d035a"
OA_TOKEN = "leadrelay-test-token"
OA_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "ww_test_corp"
WECOM_TOKEN = "leadrelay-wecom-token"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
API_TOKEN = "test-api-token"
# server.secret_key of every test config (live mode requires one); never used outside tests.
SECRET_KEY = "lr-test-9nQe4VfXbW2sK7pTzLm0aRy3HcJd8UoG5iEkN1xPqB6tZwAhVjDgCu"


def make_config(backend: Backend, *, api_base_url: str | None = None, **sections: Any) -> Config:
    raw: dict[str, Any] = {
        "server": {"secret_key": SECRET_KEY},
        "database": {"url": backend.database_url},
        "redis": {"url": backend.redis_url, "key_prefix": backend.redis_prefix},
        "wechat": {"app_id": OA_APP_ID, "token": OA_TOKEN, "encoding_aes_key": OA_AES_KEY, "mode": "sandbox"},
        "wecom": {"corp_id": CORP_ID, "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES_KEY, "agent_id": 1000002},
        "inbox": {"sweep_interval_s": 0.5, "sweep_grace_s": 1.0},
        "api": {"tokens": [API_TOKEN]},
        "channels": {"expo2026": {"channel": "expo", "scene": "event"},
                     "sales_card": {"channel": "referral", "scene": "event"}},
    }
    if api_base_url is not None:
        raw["wechat"] |= {"mode": "live", "app_secret": "oa-secret", "api_base_url": api_base_url}
        raw["wecom"] |= {"secret": "app-secret", "contact_secret": "contact-secret", "api_base_url": api_base_url}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, dict) else values
    return build_config(raw)


def free_port() -> int:
    """A port free right now, for a server that must know its own address before it starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def oa_sim(safe: bool = True) -> OASimulator:
    return OASimulator(OA_TOKEN, OA_APP_ID, OA_AES_KEY if safe else "")


def wecom_sim() -> WeComSimulator:
    return WeComSimulator(WECOM_TOKEN, CORP_ID, WECOM_AES_KEY)


async def count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def stored_nothing(engine: AsyncEngine) -> bool:
    return all([await count(engine, m) == 0 for m in (InboxEvent, Lead, Identity, Touchpoint)])


async def wait_processed(engine: AsyncEngine, *, expected: int | None = None, timeout: float = 20.0) -> None:
    """Until every inbox row is handled (and, if given, ``expected`` rows exist)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = await count(engine, InboxEvent)
        pending = await count(engine, InboxEvent, InboxEvent.status == "pending")
        if pending == 0 and (expected is None or total >= expected):
            failed = await count(engine, InboxEvent, InboxEvent.status == "failed")
            assert failed == 0, "some inbox rows failed"
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"inbox not processed in {timeout}s: {pending} pending of {total}")


async def lead_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Lead.id).where(Lead.merged_into_id.is_(None)).order_by(Lead.id))
        return list(rows.scalars())

