"""The hand-off loop through the real endpoints: a prospect's messages make an MQL, routing gives it to a
salesperson, the WeCom card reaches their phone (the fake records it), their click on 接受 comes back as
WeCom's encrypted template_card_event callback, the lead is SAL, the CRM webhook is delivered once and the
card shows who accepted it. A click on someone else's card changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.ingress.simulate import oa_text
from bot.keys import ENGINE, SERVICES, SESSIONS
from leads.identity import OA_OPENID, IdentityKey
from leads.sources import Source
from storage.models import Assignment, AssignmentEvent, AuditEntry, Lead, OutboxMessage, User
from storage.repos import assignments as assignments_repo
from storage.repos.api_tokens import issue_token
from storage.repos.audit import DENIED
from storage.repos.leads import LeadRepository
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from tests.support.calls import send_oa
from tests.support.fakes.wechat_cards import cards_of, send_card_click
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.forms import fake_state
from tests.support.helpers import OA_APP_ID, wait_processed, wecom_sim

PRICING = {"name": "pricing", "keywords": ["价格"], "reply": "价格请见官网", "score_event": "visit_pricing"}
ABLE = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b",
        "company": "华东精密制造"}
ASK_PRICE = "想了解一下价格"  # visit_pricing +20: over the MQL threshold


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = fake_state()
    state.register_user("o_zhang", unionid="u_zhang")
    for userid in ("sales_chen", "sales_wu"):
        state.register_employee(userid)
    return state


@pytest.fixture
async def crm() -> AsyncIterator[list[dict[str, Any]]]:
    """A CRM endpoint that records what it receives."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append({"headers": dict(request.headers), "body": await request.json()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    received.append({"url": f"http://127.0.0.1:{runner.addresses[0][1]}/hook"})
    yield received
    await runner.cleanup()


@pytest.fixture
async def client(app_client, fake, crm):
    return await app_client(api_base_url=fake.base_url, intents=[PRICING], routing={"default_owner": "chen"},
                            crm={"webhook_url": crm.pop(0)["url"], "webhook_secret": "s3cret-for-tests"})


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def setup_people_and_lead(app, *, chen_wecom: str | None = "sales_chen",
                                card_style: str = "template_card") -> tuple[int, str]:
    """陈静 (the default owner, with an API token) and 吴磊, and a prospect one sign of intent short of an MQL."""
    async with app[SESSIONS]() as session, session.begin():
        chen = await add_user(session, username="chen", role="sales", password_hash="x", display_name="陈静",
                              wecom_userid=chen_wecom)
        chen.card_style = card_style
        await add_user(session, username="wu", role="sales", password_hash="x", display_name="吴磊",
                       wecom_userid="sales_wu")
        token, _ = await issue_token(session, chen.id, "test")
        at = datetime.now(UTC) - timedelta(hours=1)
        repo = LeadRepository(session, app[SERVICES].scoring)
        lead = await repo.resolve([IdentityKey(OA_OPENID, OA_APP_ID, "o_zhang")], now=at, inbox_id=None,
                                  display_name="张伟")
        await repo.merge_profile(lead, ABLE)
        for kind in ("webinar_register", "webinar_attend", "email_open"):
            await repo.add_touchpoint(lead, kind=kind, source=Source("webinar", "livestream"), occurred_at=at,
                                      inbox_id=None, detail={"content_id": "webinar-0"})
        return lead.id, token


async def lead_state(engine, lead_id: int) -> tuple[str, list[tuple[str, int]]]:
    async with engine.connect() as conn:
        stage = (await conn.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one()
        rows = (await conn.execute(select(Assignment.status, Assignment.user_id).where(Assignment.lead_id == lead_id)
                                   .order_by(Assignment.id))).all()
    return stage, [(r.status, r.user_id) for r in rows]


async def audit_rows(engine) -> list[Any]:
    """The card clicks' "lead.accept" audit entries (Core rows: AuditEntry's attribute names), oldest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(AuditEntry.__table__).where(AuditEntry.action == "lead.accept")
                                   .order_by(AuditEntry.id))).all()
    return list(rows)


async def user_id(engine, username: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(User.id).where(User.username == username))).scalar_one()


async def event_kinds(engine, lead_id: int) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(AssignmentEvent.kind).where(AssignmentEvent.lead_id == lead_id)
                                        .order_by(AssignmentEvent.id))).scalars())


async def test_mql_to_card_to_click_to_sal_to_crm_and_the_card_updated(client, fake, crm):
    app = client.server.app
    engine = app[ENGINE]
    lead_id, _ = await setup_people_and_lead(app)
    state = cards_of(fake.state)
    callback = str(client.make_url("/wecom/callback"))

    assert (await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880001))).status == 200
    (card_msg,) = await until(lambda: state.messages(fake.state, "template_card", "sales_chen"))
    card = card_msg["template_card"]
    assert card["main_title"]["title"] == "张伟 · 华东精密制造"
    assert card["card_action"]["url"].endswith(f"/m/leads/{lead_id}")
    accept_key = card["button_list"][0]["key"]
    stage, assignments = await lead_state(engine, lead_id)
    assert stage == "mql" and [s for s, _ in assignments] == ["pending"]

    # 吴磊 clicks 陈静's card (a forwarded screenshot, a shared phone): nothing changes.
    assert await send_card_click(fake.state, callback, wecom_sim(), task_id=card["task_id"], userid="sales_wu",
                                 key=accept_key) == 200
    await wait_processed(engine, expected=2)
    assert await lead_state(engine, lead_id) == (stage, assignments)
    assert state.updates == [] and crm == []
    # Refused like the console's 403: audited, by 吴磊, although the decision itself rolled back.
    (denied,) = await audit_rows(engine)
    wu_id = await user_id(engine, "wu")
    assert (denied.action, denied.outcome, denied.target_kind, denied.target_id) == (
        "lead.accept", DENIED, "lead", str(lead_id))
    assert (denied.actor_user_id, denied.actor_label) == (wu_id, "wu")
    assert denied.after["assignment_id"] and denied.after["code"] == "not_your_lead"

    assert await send_card_click(fake.state, callback, wecom_sim(), task_id=card["task_id"], userid="sales_chen",
                                 key=accept_key) == 200
    await wait_processed(engine, expected=3)
    stage, assignments = await lead_state(engine, lead_id)
    assert stage == "sal" and [s for s, _ in assignments] == ["accepted"]
    (update,) = await until(lambda: state.updates)
    assert update["task_id"] == card["task_id"] and update["userids"] == ["sales_chen"]
    assert update["button"]["replace_name"] == "已接受 · 陈静"
    await until(lambda: crm)

    # A second tap on 接受 a moment later: still one acceptance, one card update, one CRM delivery.
    assert await send_card_click(fake.state, callback, wecom_sim(), task_id=card["task_id"], userid="sales_chen",
                                 key=accept_key, at=int(time.time()) + 2) == 200
    await wait_processed(engine, expected=4)
    await asyncio.sleep(0.5)  # room for a second delivery or update, if there were one
    (delivery,) = crm
    assert delivery["body"]["event"] == "lead.accepted" and delivery["body"]["lead"]["id"] == lead_id
    assert len(state.updates) == 1
    assert await event_kinds(engine, lead_id) == ["assigned", "pushed", "accepted", "card_updated"]
    assert sorted(await outbox_methods(engine, lead_id)) == [
        "crm.lead_accepted", "wecom.template_card", "wecom.update_template_card"]


async def test_a_lead_returned_in_the_mobile_inbox_updates_its_card_too(client, fake):
    app = client.server.app
    lead_id, token = await setup_people_and_lead(app)
    state = cards_of(fake.state)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880002))
    (card_msg,) = await until(lambda: state.messages(fake.state, "template_card", "sales_chen"))
    resp = await client.post(f"/api/leads/{lead_id}/return", headers={"Authorization": f"Bearer {token}"},
                             json={"reason": "预算不足", "text": "今年没有预算"})
    assert resp.status == 200, await resp.text()
    (update,) = await until(lambda: state.updates)
    assert update["task_id"] == card_msg["template_card"]["task_id"]
    assert update["button"]["replace_name"] == "已退回 · 陈静"
    assert (await lead_state(app[ENGINE], lead_id))[0] == "returned"


async def test_a_member_on_an_old_client_gets_a_textcard(client, fake):
    app = client.server.app
    lead_id, _ = await setup_people_and_lead(app, card_style="textcard")
    state = cards_of(fake.state)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880003))
    (msg,) = await until(lambda: state.messages(fake.state, "textcard", "sales_chen"))
    assert msg["textcard"]["title"] == "新线索：张伟 · 华东精密制造"
    assert msg["textcard"]["url"].endswith(f"/m/leads/{lead_id}") and msg["textcard"]["btntxt"] == "详情"
    assert state.messages(fake.state, "template_card") == []


async def test_a_member_without_a_wecom_userid_gets_nothing_and_the_timeline_says_why(client, fake):
    app = client.server.app
    lead_id, _ = await setup_people_and_lead(app, chen_wecom=None)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880004))
    await wait_processed(app[ENGINE], expected=1)
    assert (await lead_state(app[ENGINE], lead_id))[1][0][0] == "pending"  # routed all the same
    async with app[ENGINE].connect() as conn:
        detail = (await conn.execute(select(AssignmentEvent.detail).where(
            AssignmentEvent.lead_id == lead_id, AssignmentEvent.kind == "pushed"))).scalar_one()
    assert detail == {"skipped": "no_wecom_userid"}
    assert "wecom.template_card" not in await outbox_methods(app[ENGINE], lead_id)


async def outbox_methods(engine, lead_id: int) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(OutboxMessage.method).where(OutboxMessage.lead_id == lead_id)
                                        .order_by(OutboxMessage.id))).scalars())


async def test_a_card_still_waiting_when_the_lead_is_accepted_is_never_sent(client, fake):
    app = client.server.app
    lead_id, token = await setup_people_and_lead(app)
    fake.state.fail_next("/cgi-bin/message/send", -1, times=5, errmsg="system busy")  # the card waits to retry
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880005))

    async def card_waiting() -> bool:
        async with app[ENGINE].connect() as conn:
            return bool((await conn.execute(select(OutboxMessage.id).where(
                OutboxMessage.method == "wecom.template_card", OutboxMessage.attempts >= 1,
                OutboxMessage.status == "pending"))).first())

    await until(card_waiting)
    resp = await client.post(f"/api/leads/{lead_id}/accept", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    async with app[ENGINE].connect() as conn:
        row = (await conn.execute(select(OutboxMessage.status, OutboxMessage.last_error)
                                  .where(OutboxMessage.method == "wecom.template_card"))).one()
        detail = (await conn.execute(select(AssignmentEvent.detail).where(
            AssignmentEvent.lead_id == lead_id, AssignmentEvent.kind == "card_updated"))).scalar_one()
    assert row.status == "cancelled" and "不再发送" in row.last_error
    assert detail["cancelled"] is True
    await asyncio.sleep(0.3)
    assert cards_of(fake.state).messages(fake.state, "template_card") == []


async def test_a_reassigned_lead_gets_a_new_card_and_the_old_one_says_so(client, fake):
    app = client.server.app
    lead_id, _ = await setup_people_and_lead(app)
    async with app[SESSIONS]() as session, session.begin():
        boss = await add_user(session, username="boss", role="manager", password_hash="x")
        manager_token, _ = await issue_token(session, boss.id, "test")
    state = cards_of(fake.state)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880006))
    (old,) = await until(lambda: state.messages(fake.state, "template_card", "sales_chen"))
    resp = await client.post(f"/api/leads/{lead_id}/assign", headers={"Authorization": f"Bearer {manager_token}"},
                             json={"user": "wu"})
    assert resp.status == 200, await resp.text()
    (new,) = await until(lambda: state.messages(fake.state, "template_card", "sales_wu"))
    (update,) = await until(lambda: state.updates)
    assert update["task_id"] == old["template_card"]["task_id"] and update["button"]["replace_name"] == "已改派"
    assert new["template_card"]["task_id"] != old["template_card"]["task_id"]

    # 陈静 taps 接受 on the old card: it is no longer theirs to accept.
    await send_card_click(fake.state, str(client.make_url("/wecom/callback")), wecom_sim(),
                          task_id=old["template_card"]["task_id"], userid="sales_chen",
                          key=old["template_card"]["button_list"][0]["key"])
    await wait_processed(app[ENGINE], expected=2)
    stage, assignments = await lead_state(app[ENGINE], lead_id)
    assert stage == "mql" and [s for s, _ in assignments] == ["superseded", "pending"]


async def test_a_click_by_a_member_who_is_no_single_user_is_audited_without_their_userid(client, fake):
    app = client.server.app
    lead_id, _ = await setup_people_and_lead(app)
    async with app[SESSIONS]() as session, session.begin():  # two users share a WeCom userid: acts for nobody
        await add_user(session, username="wu2", role="sales", password_hash="x", wecom_userid="sales_wu")
    state = cards_of(fake.state)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880007))
    (card_msg,) = await until(lambda: state.messages(fake.state, "template_card", "sales_chen"))
    card = card_msg["template_card"]
    callback = str(client.make_url("/wecom/callback"))
    for n, userid in enumerate(("sales_wu", "stranger_x"), start=2):  # ambiguous, then unknown
        await send_card_click(fake.state, callback, wecom_sim(), task_id=card["task_id"], userid=userid,
                              key=card["button_list"][0]["key"], at=int(time.time()) + n)
        await wait_processed(app[ENGINE], expected=n)
    stage, assignments = await lead_state(app[ENGINE], lead_id)
    assert stage == "mql" and [s for s, _ in assignments] == ["pending"]
    rows = await audit_rows(app[ENGINE])
    assert [(r.outcome, r.target_id, r.actor_user_id, r.after["code"]) for r in rows] == [
        (DENIED, str(lead_id), None, "unknown_wecom_member")] * 2
    labels = [r.actor_label for r in rows]
    assert labels == [f"wecom:{hashlib.sha256(u.encode()).hexdigest()[:12]}" for u in ("sales_wu", "stranger_x")]
    assert not any("sales_wu" in str(r) or "stranger_x" in str(r) for r in rows)  # no raw userid kept


async def test_a_stale_card_read_before_a_reassignment_never_accepts_the_new_one(client, fake, monkeypatch):
    """陈静 leads 吴磊's team. Her click on her old card races the reassignment to 吴磊: the handler read the old
    assignment as pending, but the decision, under the lock, sees a different pending one and refuses."""
    app = client.server.app
    lead_id, _ = await setup_people_and_lead(app)
    async with app[SESSIONS]() as session, session.begin():
        boss = await add_user(session, username="boss", role="manager", password_hash="x")
        manager_token, _ = await issue_token(session, boss.id, "test")
        chen = (await session.execute(select(User).where(User.username == "chen"))).scalar_one()
        chen.role = "team_lead"
        team = await add_team(session, "华东")
        for name in ("chen", "wu"):
            await set_member(session, team.id, (await session.execute(
                select(User.id).where(User.username == name))).scalar_one())
    state = cards_of(fake.state)
    await send_oa(client, oa_text("o_zhang", ASK_PRICE, 880008))
    (old,) = await until(lambda: state.messages(fake.state, "template_card", "sales_chen"))
    old_id = (await lead_state_ids(app[ENGINE], lead_id))[0]
    resp = await client.post(f"/api/leads/{lead_id}/assign", headers={"Authorization": f"Bearer {manager_token}"},
                             json={"user": "wu"})
    assert resp.status == 200, await resp.text()
    await until(lambda: state.messages(fake.state, "template_card", "sales_wu"))

    real = assignments_repo.assignment_by_id

    async def read_before_the_reassignment(db, assignment_id: int):
        row = await real(db, assignment_id)
        return dataclasses.replace(row, status="pending") if row is not None and row.id == old_id else row

    monkeypatch.setattr("handlers.cards.assignment_by_id", read_before_the_reassignment)
    await send_card_click(fake.state, str(client.make_url("/wecom/callback")), wecom_sim(),
                          task_id=old["template_card"]["task_id"], userid="sales_chen",
                          key=old["template_card"]["button_list"][0]["key"])
    await wait_processed(app[ENGINE], expected=2)
    stage, assignments = await lead_state(app[ENGINE], lead_id)
    assert stage == "mql" and [s for s, _ in assignments] == ["superseded", "pending"]
    assert await audit_rows(app[ENGINE]) == []  # a stale card is a 409, not a refusal of authority


async def lead_state_ids(engine, lead_id: int) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Assignment.id).where(Assignment.lead_id == lead_id)
                                        .order_by(Assignment.id))).scalars())
