"""Demo hand-off: MQLs that went through the real routing (the configured ``[[routing.rules]]``), so the sales
mobile inbox has pending leads with cards recorded in the outbox and SLA timers running, and the sign-in link
the banner prints for the demo salesperson (sandbox only: a live deployment signs in through WeCom)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from bot.keys import CONFIG, EVENTS, SESSIONS
from bot.people import login_links
from leads.events import StageChanged
from leads.identity import OA_OPENID, IdentityKey
from leads.lifecycle import LEAD, MQL, transition
from leads.sources import Source
from storage.models import utcnow
from storage.repos.events import EventTx
from storage.repos.leads import LeadRepository
from storage.repos.stages import change_stages
from storage.repos.users import user_by_name

_EXPO = Source("expo", "event", "expo2026")
_CONTENT = Source("content", "article", "hr-whitepaper-2026")


@dataclass(frozen=True, slots=True)
class DemoMQL:
    openid: str
    name: str
    company: str
    region: str
    industry: str
    source: Source
    minutes_ago: int


DEMO_MQLS = (
    DemoMQL("o_demo_sun", "孙悦", "华东精工机械", "上海", "制造业", _EXPO, 12),
    DemoMQL("o_demo_qian", "钱坤", "申城软件", "江苏", "软件", Source("sem", "search", "sem_brand"), 9),
    DemoMQL("o_demo_he", "何静", "杭州云图科技", "浙江", "互联网", _CONTENT, 6),
    DemoMQL("o_demo_lin", "林峰", "鹏程电子", "深圳", "电子制造", _EXPO, 3),
)


async def load_demo_mqls(app: web.Application, now: datetime | None = None) -> int:
    """The demo MQLs, each made an MQL by the SDR in its own transaction and heard by the app's subscribers
    (routing, the card push, the SLA timers): what a real SDR transfer does."""
    now = now or utcnow()
    sdr = ""
    async with app[SESSIONS]() as session:
        user = await user_by_name(session, "sdr")
        sdr = str(user.id) if user is not None else ""
    for demo in DEMO_MQLS:
        at = now - timedelta(minutes=demo.minutes_ago)
        async with app[SESSIONS]() as session, session.begin():
            repo = LeadRepository(session)
            lead = await repo.resolve([IdentityKey(OA_OPENID, "demo", demo.openid)], now=at - timedelta(days=2),
                                      inbox_id=None, display_name=demo.name)
            lead.profile = {**(lead.profile or {}), "company": demo.company, "region": demo.region,
                            "industry": demo.industry}
            await repo.add_touchpoint(lead, kind="oa_subscribe", source=demo.source,
                                      occurred_at=at - timedelta(days=2), inbox_id=None)
            await session.flush()
            move = transition(LEAD, MQL, "sdr", "电话确认需求与预算（BANT）", sdr)
            await change_stages(EventTx(session, app[EVENTS]), [StageChanged.of(lead.id, move, at)])
    return len(DEMO_MQLS)


async def demo_login_link(app: web.Application, username: str, base: str) -> str | None:
    """A single-use sign-in link to the mobile inbox for a demo user at ``base`` (where this process listens;
    ``leadrelay user login-link`` uses server.public_url). Sandbox mode only."""
    cfg = app[CONFIG]
    if cfg.wechat.mode != "sandbox":
        return None
    async with app[SESSIONS]() as session:
        user = await user_by_name(session, username)
    if user is None or user.disabled_at is not None:
        return None
    token = login_links.issue(cfg.keyring, user.id, now=int(time.time()), ttl_s=cfg.handoff.login_link_ttl_s)
    return login_links.link(base, token)
