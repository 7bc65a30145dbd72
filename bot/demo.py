"""Demo data: a handful of prospects arriving through the real pipeline, as their callbacks would."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot.ingress.events import OA, WECOM, build_event
from bot.ingress.security import parse_xml
from bot.ingress.simulate import oa_event, oa_text, wecom_contact_event
from bot.keys import CONFIG, PIPELINE, SESSIONS
from storage.repos.inbox import count_inbox_events

log = logging.getLogger(__name__)


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


async def load_demo_on_startup(app: web.Application) -> None:
    cfg = app[CONFIG]
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
