"""The hand-off queue over the JSON API: list, claim, reply (OA inside / outside the 48-hour window, template,
WeCom message task), one reply per question, scoping and refusals."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.keys import SESSIONS
from storage.models import Handoff, OutboxMessage
from tests.sdr_console.console_support import audit_rows, bearer, call, make_handoff, make_lead, user_with_token


async def outbox_rows(client) -> list[OutboxMessage]:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def handoff_row(client, handoff_id: int) -> Handoff:
    async with client.server.app[SESSIONS]() as session:
        row = await session.get(Handoff, handoff_id)
        assert row is not None
        return row


@pytest.fixture
async def client(app_client):
    return await app_client()  # sandbox mode, no template configured


async def test_a_reply_inside_the_window_is_one_customer_service_message_and_closes_the_question(client) -> None:
    sdr_id, token = await user_with_token(client, "chenjing", "sdr")
    lead_id = await make_lead(client, "o-alice")
    hid = await make_handoff(client, lead_id, "你们支持私有化部署吗？", last_oa_hours_ago=2)

    status, item = await call(client, "POST", f"/api/handoffs/{hid}/claim", bearer(token))
    assert status == 200 and item["claimed_by"] == "chenjing" and item["claimed_by_user_id"] == sdr_id
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token),
                              json={"text": "支持的，稍后发您部署方案。"})
    assert status == 200, body
    assert body["kind"] == "oa_text" and body["outbox_status"] == "sandboxed" and "客服消息" in body["message"]
    [row] = await outbox_rows(client)
    assert (row.method, row.target, row.lead_id, row.author_user_id) == ("oa.custom_text", "oa", lead_id, sdr_id)
    assert row.payload == {"openid": "o-alice", "content": "支持的，稍后发您部署方案。"}
    assert body["outbox_id"] == row.id
    h = await handoff_row(client, hid)
    assert (h.status, h.closed_by_user_id, h.reply_outbox_id) == ("closed", sdr_id, row.id) and h.closed_at
    assert body["handoff"]["status"] == "closed" and body["handoff"]["closed_by"] == "chenjing"
    [entry] = await audit_rows(client, action="handoff.reply")
    assert entry.outcome == "ok" and entry.target_id == str(hid) and entry.actor_user_id == sdr_id
    assert "支持的" not in str(entry.after)  # the audit log keeps no copy of the text

    status, timeline = await call(client, "GET", f"/api/leads/{lead_id}/timeline", bearer(token))
    assert status == 200
    assert [(i["kind"], i["author"]) for i in timeline["items"] if i["text"] == "支持的，稍后发您部署方案。"] == [
        ("outbound", "chenjing")]  # the reply shows in the lead's timeline, with who sent it

    status, again = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json={"text": "再说一次"})
    assert status == 409 and again["code"] == "handoff_closed"
    assert len(await outbox_rows(client)) == 1


async def test_outside_the_window_the_api_explains_and_changes_nothing(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-bob"), last_oa_hours_ago=49)
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json={"text": "您好"})
    assert status == 409 and body["code"] == "outside_service_window"
    assert "已于" in body["message"] and "48 小时" in body["message"] and "模板" in body["message"]
    assert body["template_available"] is False and body["window_closed_at"]
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token),
                              json={"text": "您好", "mode": "template"})
    assert status == 409 and body["code"] == "no_template_configured" and "模板" in body["message"]
    assert await outbox_rows(client) == []
    h = await handoff_row(client, hid)
    assert h.status == "open" and h.closed_at is None and h.claimed_by_user_id is None
    assert await audit_rows(client, action="handoff.reply") == []


async def test_a_lead_that_never_used_the_oa_has_no_window(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-new"), last_oa_hours_ago=None)
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json={"text": "您好"})
    assert status == 409 and body["code"] == "outside_service_window" and "没有任何互动记录" in body["message"]


async def test_template_mode_sends_the_configured_template(app_client) -> None:
    client = await app_client(outbound={"fallback_template_id": "TPL-REPLY"})
    sdr_id, token = await user_with_token(client, "chenjing", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-carol"), last_oa_hours_ago=72)
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json={"text": "您好"})
    assert status == 409 and body["template_available"] is True and "请改用模板消息发送" in body["message"]
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token),
                              json={"text": "您好，这是您咨询的报价。", "mode": "template"})
    assert status == 200 and body["kind"] == "oa_template"
    [row] = await outbox_rows(client)
    assert (row.method, row.author_user_id) == ("oa.template", sdr_id)
    assert row.payload["template_id"] == "TPL-REPLY" and row.payload["openid"] == "o-carol"
    assert row.payload["data"]["first"]["value"] == "您好，这是您咨询的报价。"
    assert (await handoff_row(client, hid)).status == "closed"


async def test_a_wecom_contact_gets_a_message_task_for_its_owning_member(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    lead_id = await make_lead(client, "o-unused")
    hid = await make_handoff(client, lead_id, last_oa_hours_ago=None, wecom=("wm-dave", "sales_chen"))
    status, queue = await call(client, "GET", "/api/handoffs", bearer(token))
    assert [(i["channel"], i["channel_label"], i["window_open"]) for i in queue["items"]] == [
        ("wecom", "企业微信", False)]
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json={"text": "您好"})
    assert status == 200 and body["kind"] == "wecom_task"
    assert body["message"] == "已为负责成员 sales_chen 创建消息任务，需其在企业微信中确认发送。"
    [row] = await outbox_rows(client)
    assert (row.target, row.method) == ("wecom", "wecom.add_msg_template")
    assert row.payload == {"sender": "sales_chen", "external_userid": "wm-dave", "content": "您好"}


async def test_claims_conflict_between_people_but_not_with_oneself(client) -> None:
    _, a = await user_with_token(client, "chenjing", "sdr")
    _, b = await user_with_token(client, "wanglei", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-erin"))
    assert (await call(client, "POST", f"/api/handoffs/{hid}/claim", bearer(a)))[0] == 200
    assert (await call(client, "POST", f"/api/handoffs/{hid}/claim", bearer(a)))[0] == 200
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/claim", bearer(b))
    assert status == 409 and body["code"] == "claimed_by_other" and "chenjing" in body["message"]
    status, body = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(b), json={"text": "我来回复"})
    assert status == 409 and body["code"] == "claimed_by_other"
    assert await outbox_rows(client) == []
    status, mine = await call(client, "GET", "/api/handoffs?mine=true", bearer(a))
    assert [i["id"] for i in mine["items"]] == [hid] and mine["total"] == 1
    assert (await call(client, "GET", "/api/handoffs?mine=true", bearer(b)))[1]["items"] == []


async def test_a_double_submit_sends_once(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-frank"))
    results = await asyncio.gather(*[call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token),
                                          json={"text": "好的"}) for _ in range(2)])
    assert sorted(status for status, _ in results) == [200, 409]
    assert len(await outbox_rows(client)) == 1


async def test_a_salesperson_answers_only_their_own_leads(client) -> None:
    sales_id, sales = await user_with_token(client, "zhaomin", "sales")
    other_id, _ = await user_with_token(client, "lina", "sales")
    own = await make_handoff(client, await make_lead(client, "o-own", owner=sales_id), "我的问题")
    foreign = await make_handoff(client, await make_lead(client, "o-foreign", owner=other_id), "别人的问题")
    status, queue = await call(client, "GET", "/api/handoffs", bearer(sales))
    assert [i["id"] for i in queue["items"]] == [own] and queue["total"] == 1
    for path, kwargs in ((f"/api/handoffs/{foreign}/claim", {}),
                         (f"/api/handoffs/{foreign}/reply", {"json": {"text": "您好"}})):
        status, body = await call(client, "POST", path, bearer(sales), **kwargs)
        assert status == 403
    denied = await audit_rows(client, action="handoff.reply", outcome="denied")
    assert len(denied) == 2 and all(e.actor_user_id == sales_id for e in denied)
    assert (await handoff_row(client, foreign)).claimed_by_user_id is None
    assert (await call(client, "POST", f"/api/handoffs/{own}/reply", bearer(sales), json={"text": "您好"}))[0] == 200


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": "长" * 1001}, {"text": 5},
                                  {"text": "好", "mode": "fax"}, {"text": "好", "author": "x"}])
async def test_bad_bodies_are_400_and_change_nothing(client, body) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    hid = await make_handoff(client, await make_lead(client, "o-gina"))
    status, answer = await call(client, "POST", f"/api/handoffs/{hid}/reply", bearer(token), json=body)
    assert status == 400 and answer["code"] == "invalid_body"
    assert await outbox_rows(client) == [] and (await handoff_row(client, hid)).status == "open"


async def test_unknown_questions_are_404(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    for path in ("/api/handoffs/999999/claim", "/api/handoffs/abc/claim", "/api/handoffs/0/reply"):
        status, body = await call(client, "POST", path, bearer(token), json={"text": "好"})
        assert status == 404 and body["code"] == "not_found"


async def test_the_queue_lists_what_the_console_shows(client) -> None:
    _, token = await user_with_token(client, "chenjing", "sdr")
    inside = await make_handoff(client, await make_lead(client, "o-hana"), "问题一", last_oa_hours_ago=10)
    outside = await make_handoff(client, await make_lead(client, "o-ivan"), "问题二", last_oa_hours_ago=50)
    status, queue = await call(client, "GET", "/api/handoffs", bearer(token))
    assert status == 200 and queue["total"] == 2
    by_id = {i["id"]: i for i in queue["items"]}
    assert set(by_id[inside]) >= {"id", "lead_id", "reason", "message", "status", "created_at", "lead_name",
                                  "claimed_by", "channel", "window_open", "window_closes_at"}
    assert (by_id[inside]["lead_name"], by_id[inside]["channel"], by_id[inside]["window_open"],
            by_id[inside]["window_hours_left"]) == ("o-hana", "oa", True, 38)
    assert by_id[outside]["window_open"] is False and by_id[outside]["window_closes_at"]
    assert (await call(client, "GET", "/api/handoffs?status=closed", bearer(token)))[1]["items"] == []
    assert (await call(client, "GET", "/api/handoffs?status=bogus", bearer(token)))[0] == 400
