"""Prepare handlers (bot/dispatch/router.py): matched like process handlers, own before included routers; the
product's lookups are registered as prepare handlers, so no process handler calls WeChat."""

from __future__ import annotations

import inspect

from bot.dispatch import filters as F
from bot.dispatch.router import Router
from bot.ingress.events import OA, WECOM, build_event
from bot.ingress.security import parse_xml
from bot.ingress.simulate import oa_event, oa_text, wecom_contact_event
from handlers import build_router
from tests.support.helpers import CORP_ID, OA_APP_ID


def oa(xml: str):
    return build_event(OA, OA_APP_ID, parse_xml(xml.encode()))


def test_prepare_handlers_match_by_filters_own_first() -> None:
    root, child = Router("root"), Router("child")
    root.include(child)

    @child.prepare(F.source(OA))
    async def child_any(ctx):
        return {"by": "child"}

    @root.prepare(F.source(OA), F.event("subscribe"))
    async def root_follow(ctx):
        return {"by": "root"}

    assert root.match_prepare(oa(oa_event("o1", "subscribe"))) is root_follow
    assert root.match_prepare(oa(oa_text("o1", "hi", 1))) is child_any
    assert Router("empty").match_prepare(oa(oa_text("o1", "hi", 1))) is None
    assert root.match(oa(oa_text("o1", "hi", 1))) is None  # prepare handlers are not process handlers


def test_the_product_looks_up_only_in_prepare_handlers() -> None:
    router = build_router()
    follow = router.match_prepare(oa(oa_event("o1", "subscribe", "qrscene_x")))
    assert follow is not None and follow.__name__ == "follower_info"
    added = router.match_prepare(build_event(WECOM, CORP_ID, parse_xml(
        wecom_contact_event(CORP_ID, "add_external_contact", "sales", "wm1").encode())))
    assert added is not None and added.__name__ == "added_contact_info"
    # Scans, messages and unfollows need no lookup: they are handled straight away in their batch.
    for xml in (oa_event("o1", "SCAN", "x"), oa_event("o1", "scan", "x"), oa_text("o1", "hi", 2),
                oa_event("o1", "unsubscribe")):
        assert router.match_prepare(oa(xml)) is None
    # No process handler reaches for a WeChat client: lookups belong in prepare handlers.
    import handlers.conversation
    import handlers.oa
    import handlers.wecom

    for module in (handlers.oa, handlers.wecom, handlers.conversation):
        source = inspect.getsource(module)
        assert "oa_api" not in source and "wecom_api" not in source
    assert "oa_user_info" not in inspect.getsource(handlers.oa.follow_or_scan)
    assert "wecom_contact(" not in inspect.getsource(handlers.wecom.contact_added)
