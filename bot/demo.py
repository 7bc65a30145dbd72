"""Demo data: a handful of prospects arriving through the real pipeline, as their callbacks would, and the
people who work them (an SDR, a salesperson, a team lead, an admin in two teams) with known demo passwords."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from bot.demo_work import load_demo_work
from bot.ingress.events import OA, WECOM, build_event
from bot.ingress.security import parse_xml
from bot.ingress.simulate import oa_event, oa_text, wecom_contact_event
from bot.keys import CONFIG, PIPELINE, SESSIONS
from bot.people.accounts import Who, create_user
from bot.people.passwords import hash_password
from storage.repos.inbox import count_inbox_events
from storage.repos.users import list_users

log = logging.getLogger(__name__)
# Sandbox demo only: printed at start-up so a newcomer can sign in at once. Never used outside --demo.
DEMO_PASSWORD = "leadrelay-demo"
# (username, display name, role, team)
DEMO_USERS = (
    ("sdr", "陈晓（SDR）", "sdr", "华东销售组"),
    ("sales", "王磊（销售）", "sales", "华东销售组"),
    ("lead", "李娜（销售组长）", "team_lead", "华东销售组"),
    ("sales2", "赵敏（销售）", "sales", "华南销售组"),
    ("admin", "系统管理员", "admin", None),
)


def demo_callbacks(corp_id: str, now: int) -> list[tuple[str, str]]:
    day = 86_400
    return [
        (OA, oa_event("o_demo_zhang", "subscribe", "qrscene_expo2026", at=now - 6 * day)),
        (OA, oa_text("o_demo_zhang", "你们的产品价格多少", 900001, at=now - 6 * day + 60)),
        (OA, oa_event("o_demo_li", "subscribe", "qrscene_sem_brand", at=now - 3 * day)),
        (OA, oa_event("o_demo_li", "CLICK", "content:hr-whitepaper-2026", at=now - 3 * day + 30)),
        (OA, oa_text("o_demo_li", "你们支持私有化部署吗？", 900002, at=now - 3 * day + 90)),
        (OA, oa_event("o_demo_wang", "subscribe", at=now - 2 * day)),
        (OA, oa_event("o_demo_wang", "SCAN", "live_0312", at=now - day)),
        (OA, oa_event("o_demo_zhao", "subscribe", "qrscene_booth_b12", at=now - day)),
        (OA, oa_event("o_demo_zhao", "unsubscribe", at=now - 3600)),
        (WECOM, wecom_contact_event(corp_id, "add_external_contact", "sales_chen", "wm_demo_sun",
                                    state="sales_card", welcome_code="DEMO-WELCOME", at=now - 5 * day)),
    ]


async def load_demo_users(app: web.Application) -> bool:
    """The demo people, in an empty users table; False when there are users already."""
    async with app[SESSIONS]() as session, session.begin():
        if await list_users(session, limit=1):
            return False
        password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)  # slow on purpose: off the loop
        for username, display_name, role, team in DEMO_USERS:
            await create_user(session, Who("demo"), username=username, role=role, password_hash=password_hash,
                              display_name=display_name, team=team)
    return True


def print_demo_banner(app: web.Application) -> None:
    """Where to click and who to be, on stdout (not the log: these are the demo's known passwords)."""
    cfg = app[CONFIG]
    base = f"http://{cfg.server.host}:{cfg.server.port}"  # where this process listens (--port included)
    users = "\n".join(f"    {username:<7} {display_name}" for username, display_name, *_ in DEMO_USERS)
    print(f"\nLeadRelay demo is running.\n  Console: {base}/console/\n"
          f"  Sign in as (password for all: {DEMO_PASSWORD}):\n{users}\n"
          f"  API: curl -H 'Authorization: Bearer <[api] tokens>' {base}/api/leads\n",
          flush=True)


async def load_demo_on_startup(app: web.Application) -> None:
    cfg = app[CONFIG]
    if await load_demo_users(app):
        log.info("demo: %d users in two teams created", len(DEMO_USERS))
    print_demo_banner(app)
    async with app[SESSIONS]() as session:
        if await count_inbox_events(session):
            log.info("demo: database already has events; not loading demo data")
            return
    count = 0
    for source, xml in demo_callbacks(cfg.wecom.corp_id, int(time.time())):
        if source == WECOM and not cfg.wecom.enabled:
            continue
        app_id = cfg.wechat.app_id if source == OA else cfg.wecom.corp_id
        await app[PIPELINE].accept(build_event(source, app_id, parse_xml(xml.encode())), xml)
        count += 1
    log.info("demo: %d callbacks fed through the pipeline", count)
    async with app[SESSIONS]() as session, session.begin():
        worked = await load_demo_work(session)
    log.info("demo: %d worked leads with stages, notes, tasks and hand-off questions", worked)
