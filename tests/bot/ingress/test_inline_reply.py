"""Passive replies: inline within the budget, encrypted in safe mode, identical on a retry."""

from __future__ import annotations

import asyncio
import itertools

from bot.dispatch import filters as F
from bot.dispatch.context import ReplyContext
from bot.dispatch.router import Router
from bot.ingress.events import OA
from bot.ingress.security import Envelope
from bot.ingress.simulate import decrypt_reply, oa_text
from bot.keys import ENGINE
from handlers import build_router
from storage.models import Touchpoint
from tests.support.helpers import OA_AES_KEY, OA_APP_ID, OA_TOKEN, count, oa_sim, wait_processed


def router_with_replies() -> Router:
    counter = itertools.count(1)
    replies = Router("test-replies")

    @replies.reply(F.source(OA), F.msg_type("text"), lambda ev: ev.get("Content") == "ping")
    async def pong(ctx: ReplyContext) -> str:
        return ctx.text(f"pong #{next(counter)}")  # differs per call: a retry must not see #2

    @replies.reply(F.source(OA), F.msg_type("text"), lambda ev: ev.get("Content") == "slow")
    async def too_slow(ctx: ReplyContext) -> str:
        await asyncio.sleep(2)
        return ctx.text("late")

    root = Router("test-root")
    root.include(replies, build_router())  # ahead of the product's own reply handlers
    return root


async def test_reply_is_inline_encrypted_and_the_same_on_retry(app_client):
    client = await app_client(router=router_with_replies())
    envelope = Envelope(OA_TOKEN, OA_AES_KEY, OA_APP_ID, work=False)
    xml = oa_text("o_ping", "ping", 31337)
    answers = []
    for _ in range(2):
        req = oa_sim().post(xml)
        resp = await client.post(f"/wechat/callback?{req.query}", data=req.body)
        assert resp.status == 200
        answers.append(decrypt_reply(envelope, await resp.read()))
    assert "pong #1" in answers[0] and answers[0] == answers[1]
    assert "<ToUserName><![CDATA[o_ping]]></ToUserName>" in answers[0]
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, Touchpoint) == 1  # the reply does not replace the after-ack work


async def test_reply_over_budget_answers_success_and_keeps_the_event(app_client):
    client = await app_client(router=router_with_replies(), callback={"reply_budget_ms": 200})
    req = oa_sim().post(oa_text("o_slow", "slow", 31338))
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await client.post(f"/wechat/callback?{req.query}", data=req.body)
    assert await resp.text() == "success"
    assert loop.time() - started < 1.5
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, Touchpoint) == 1


def test_router_matches_first_registered_then_children():
    from bot.ingress.events import build_event
    from bot.ingress.security import parse_xml

    root, child = Router("root"), Router("child")
    seen = []

    @root.on(F.msg_type("event"))
    async def root_event(ctx):
        seen.append("root")

    @child.on(F.msg_type("text"))
    async def child_text(ctx):
        seen.append("child")

    root.include(child)
    text = build_event(OA, "wx", parse_xml(oa_text("o", "hi", 1).encode()))
    assert root.match(text) is child_text
    assert root.match_reply(text) is None
