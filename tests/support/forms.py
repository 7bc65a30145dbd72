"""Configs, fake WeChat state and page helpers shared by the form and mini-program tests."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.config.capture import build_capture, validate_capture
from bot.config.core import Config
from storage.models import Identity, Lead, MiniProgramSession, Touchpoint
from tests.support.backends import Backend
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.helpers import CORP_ID, OA_APP_ID, count, make_config

MP_APP_ID = "wxmp00000000test"
MP_SECRET = "mp-secret"
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")
PLAIN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"

FORMS: list[dict[str, Any]] = [
    {"id": "demo", "title": "预约产品演示", "description": "顾问将在一个工作日内联系您",
     "fields": ["name", "phone", "email", "company", "job_title", "department", "company_size", "company_type"],
     "required": ["name", "phone", "company"], "score_event": "request_demo", "channel": "website",
     "success_message": "预约成功，我们的顾问会尽快与您联系。"},
    {"id": "newsletter", "title": "订阅行业简报", "fields": ["email", "industry"], "required": ["email"]},
]


def capture_config(backend: Backend, *, api_base_url: str | None = None, public_url: str | None = None,
                   mini_program: bool = True) -> Config:
    """make_config plus forms and the mini-program (make_config merges tables, not arrays of tables)."""
    server = {"server": {"public_url": public_url}} if public_url else {}
    config = make_config(backend, api_base_url=api_base_url, **server)
    raw: dict[str, Any] = {"forms": FORMS}
    if mini_program:
        raw["mini_program"] = {"app_id": MP_APP_ID, "app_secret": MP_SECRET, "session_ttl_s": 3600}
    capture = build_capture(raw)
    validate_capture(capture)
    return dataclasses.replace(config, capture=capture)


def fake_state() -> FakeWeChatState:
    # The mini-program gets its access token from the same /cgi-bin/token as the OA.
    return FakeWeChatState(oa_apps={OA_APP_ID: "oa-secret", MP_APP_ID: MP_SECRET}, corp_id=CORP_ID)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return html.unescape(match.group(1))


def field_names(page: str) -> set[str]:
    return set(re.findall(r'<(?:input|select) id="f-([a-z_]+)"', page))


async def stored_counts(engine: AsyncEngine) -> dict[str, int]:
    return {m.__tablename__: await count(engine, m) for m in (Lead, Identity, Touchpoint, MiniProgramSession)}


NOTHING = {"leads": 0, "identities": 0, "touchpoints": 0, "mp_sessions": 0}


async def identities(engine: AsyncEngine) -> set[tuple[str, str, str, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Identity.kind, Identity.app, Identity.value, Identity.verified))
        return {tuple(r) for r in rows}


async def touchpoints(engine: AsyncEngine) -> list[Touchpoint]:
    async with AsyncSession(engine) as session:
        return list((await session.execute(select(Touchpoint).order_by(Touchpoint.id))).scalars())


async def leads(engine: AsyncEngine) -> list[Lead]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(select(Lead).where(Lead.merged_into_id.is_(None)).order_by(Lead.id))
        return list(rows.scalars())
