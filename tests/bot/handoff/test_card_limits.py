"""WeCom's per-member limits for hand-off cards: over 30 a minute, the waiting cards become one digest card,
never dropped (the fake drops the excess silently, as WeCom does), and the sent card's response_code works."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config.outbound import OutboundConfig
from bot.errors import WeChatAPIError
from bot.handoff import cards
from bot.handoff.cards import CardLead
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.sender import OutboxSender
from storage.db import session_factory
from storage.models import OutboxMessage
from tests.support.clock import Clock
from tests.support.fakes.wechat_cards import cards_of
from tests.support.fakes.wechat_state import FakeWeChatState

BASE = "https://leads.example.com"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wechat_state(clock: Clock) -> FakeWeChatState:
    state = FakeWeChatState(clock=lambda: clock().timestamp())  # WeCom's minute is the test's minute
    for userid in ("sales_chen", "sales_wu"):
        state.register_employee(userid)
    return state


def sender(engine, wecom, clock, redis_client, backend) -> OutboxSender:
    return OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0, redis=redis_client,
                        key_prefix=backend.redis_prefix,
                        outbound=OutboundConfig(wecom_member_per_minute=30, wecom_member_per_hour=1000))


async def push(engine, userid: str, n: int, *, style: str = "template_card") -> None:
    lead = CardLead(n, f"客户{n}", "某公司", 60, 55, "高能力·高意向（转销售）", ("visit_pricing +20",), "expo / event")
    card = (cards.template_card(lead, n, base_url=BASE, task_id=cards.new_task_id(n)) if style == "template_card"
            else cards.textcard(lead, base_url=BASE))
    async with session_factory(engine)() as session, session.begin():
        await enqueue(session, target="wecom", method=f"wecom.{style}", idempotency_key=f"card:{n}", sandbox=False,
                      payload=cards.card_payload(userid, style, card, lead, n, base_url=BASE))


async def rows(engine) -> list[OutboxMessage]:
    async with session_factory(engine)() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def test_a_burst_over_the_minute_limit_becomes_one_digest_and_nothing_is_dropped(
        engine, fake, wecom, clock, redis_client, backend):
    for n in range(1, 36):
        await push(engine, "sales_chen", n, style="textcard" if n == 33 else "template_card")
    for n in range(100, 102):
        await push(engine, "sales_wu", n)
    out = sender(engine, wecom, clock, redis_client, backend)
    await out.run_once()

    state = cards_of(fake.state)
    chen = state.messages(fake.state, "template_card", "sales_chen")
    assert len(chen) == 30 and len(state.messages(fake.state, "template_card", "sales_wu")) == 2
    by_key = {r.idempotency_key: r for r in await rows(engine)}
    digest = by_key["digest:31"]
    assert (digest.method, digest.status) == ("wecom.digest_card", "pending")
    assert [i["assignment_id"] for i in digest.payload["items"]] == [31, 32, 33, 34, 35]
    merged = [by_key[f"card:{n}"] for n in range(31, 36)]
    assert {(r.status, r.response["merged_into"]) for r in merged} == {("merged", digest.id)}
    assert all(by_key[f"card:{n}"].status == "sent" for n in range(1, 31))

    clock.advance(30)
    await out.run_once()
    assert len(state.messages(fake.state, "template_card", "sales_chen")) == 30  # still within the minute
    await push(engine, "sales_chen", 36)  # arrives while the digest waits: merged into a new digest with it
    await out.run_once()
    by_key = {r.idempotency_key: r for r in await rows(engine)}
    assert by_key["digest:31"].status == "merged" and by_key["card:36"].status == "merged"
    (newer,) = [r for r in await rows(engine) if r.method == "wecom.digest_card" and r.status == "pending"]
    assert [i["assignment_id"] for i in newer.payload["items"]] == [31, 32, 33, 34, 35, 36]

    clock.advance(31)
    await out.run_once()
    (sent,) = state.messages(fake.state, "template_card", "sales_chen")[30:]
    assert sent["template_card"]["card_type"] == "text_notice"
    assert sent["template_card"]["main_title"]["title"] == "6 条新线索待处理"
    assert sent["template_card"]["card_action"]["url"] == f"{BASE}/m/?tab=pending"
    assert state.dropped == []  # WeCom would have dropped 6 cards without the digest
    assert {r.status for r in await rows(engine)} == {"sent", "merged"}


async def test_without_the_digest_the_fake_drops_what_wecom_drops(fake, wecom):
    lead = CardLead(1, "客户", "", None, None, "未评分", (), "")
    for _ in range(31):
        await wecom.send_app_message("sales_chen", "textcard", cards.textcard(lead, base_url=BASE))
    state = cards_of(fake.state)
    assert len(state.messages(fake.state, "textcard")) == 30 and len(state.dropped) == 1


async def test_a_sent_cards_response_code_updates_it_once(fake, wecom):
    lead = CardLead(5, "客户", "", None, None, "未评分", (), "")
    task_id = cards.new_task_id(5)
    answer = await wecom.send_app_message("sales_chen", "template_card",
                                          cards.template_card(lead, 5, base_url=BASE, task_id=task_id))
    code = answer["response_code"]
    await wecom.update_template_card(["sales_chen"], code, replace_name="已接受 · 陈")
    (update,) = cards_of(fake.state).updates
    assert (update["task_id"], update["button"]["replace_name"]) == (task_id, "已接受 · 陈")
    with pytest.raises(WeChatAPIError) as used:
        await wecom.update_template_card(["sales_chen"], code, replace_name="again")
    assert used.value.errcode == 40058
    with pytest.raises(WeChatAPIError) as duplicate:  # a task_id is unique per app
        await wecom.send_app_message("sales_chen", "template_card",
                                     cards.template_card(lead, 5, base_url=BASE, task_id=task_id))
    assert duplicate.value.errcode == 40058
