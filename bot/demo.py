"""Demo data: a handful of prospects arriving through the real pipeline, as their callbacks would, and the
people who work them (an SDR, a salesperson, a team lead, an admin in two teams) with known demo passwords."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from bot.demo_handoff import demo_login_link, load_demo_mqls
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
# (username, display name, role, team, WeCom userid: where the hand-off's cards go)
DEMO_USERS = (
    ("sdr", "陈晓（SDR）", "sdr", "华东销售组", "sdr_chen"),
    ("sales", "王磊（销售）", "sales", "华东销售组", "sales_wang"),
    ("lead", "李娜（销售组长）", "team_lead", "华东销售组", "lead_li"),
    ("sales2", "赵敏（销售）", "sales", "华南销售组", "sales_zhao"),
    ("admin", "系统管理员", "admin", None, None),
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
        for username, display_name, role, team, wecom_userid in DEMO_USERS:
            await create_user(session, Who("demo"), username=username, role=role, password_hash=password_hash,
                              display_name=display_name, team=team, wecom_userid=wecom_userid)
    return True


def listening_at(app: web.Application) -> str:
    cfg = app[CONFIG]
    return f"http://{cfg.server.host}:{cfg.server.port}"  # where this process listens (--port included)


def print_demo_banner(app: web.Application) -> None:
    """Where to click and who to be, on stdout (not the log: these are the demo's known passwords)."""
    base = listening_at(app)
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
    await print_mobile_link(app)
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
    log.info("demo: %d MQLs routed to the sales teams", await load_demo_mqls(app))


async def print_mobile_link(app: web.Application) -> None:
    """The demo salesperson's way into the mobile inbox (stdout: the link signs them in, once)."""
    link = await demo_login_link(app, "sales", listening_at(app))
    if link is not None:
        minutes = app[CONFIG].handoff.login_link_ttl_s // 60
        print(f"  Sales mobile inbox (王磊, open at 375 px; works once, for {minutes} minutes):\n    {link}\n"
              "  Another link: leadrelay user login-link sales --config <this config>\n", flush=True)
