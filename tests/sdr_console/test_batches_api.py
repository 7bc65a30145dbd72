"""POST /api/batches/preview, POST /api/batches, GET /api/batches/{id}: batch messages to a segment, each exclusion
explained, one WeCom task per member, OA templates for followers without WeCom, every outcome on the timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.batches.job import run_batches
from bot.keys import CONFIG, CONVERSATION, ENQUEUE, SERVICES, SESSIONS
from storage.models import AuditEntry, Batch, BatchRecipient, BatchTask, OutboxMessage, utcnow
from tests.bot.batches.seed import count, lead, member, outbox_rows, past_send
from tests.sdr_console.console_support import bearer, call, user_with_token
from tests.support.calls import AUTH

PREVIEW, BATCHES, SEGMENTS = "/api/batches/preview", "/api/batches", "/api/segments"
# A day's limit (so one send today is the limit) and a cap of 2 WeCom messages a week; OA followers reachable.
CONFIG_SECTIONS = {"batch": {"customer_limit_period": "day"}, "nurture": {"weekly_cap": {"wecom": 2, "oa": 3}},
                   "outbound": {"fallback_template_id": "TPL-batch"},
                   "content": {"items": [{"id": "wp1", "kind": "whitepaper", "title": "白皮书",
                                          "url": "https://example.com/wp1"}]}}


async def seed(client) -> dict[str, int]:
    """One lead for each outcome of the preview."""
    now = utcnow()
    async with client.server.app[SESSIONS]() as session, session.begin():
        await member(session, "alice", "alice_wx")
        bob = await member(session, "bob", "bob_wx")
        ids = {
            "ok": await lead(session, "甲", wecom="wm-ok", follow="alice_wx"),
            "owner_route": await lead(session, "乙", wecom="wm-bob", owner=bob),  # no follow-up member on record
            "unsubscribed": await lead(session, "丙", wecom="wm-td", follow="alice_wx", consent="revoked"),
            "oa_only": await lead(session, "丁", openid="o-ding"),
            "nothing": await lead(session, "戊"),
            "limit": await lead(session, "己", wecom="wm-limit", follow="alice_wx"),
            "capped": await lead(session, "庚", wecom="wm-cap", follow="alice_wx"),
        }
        await past_send(session, ids["limit"], now - timedelta(minutes=5))  # today: the day's one is used
        for days in (2, 3):  # two in the week: the cap of 2, though none today
            await past_send(session, ids["capped"], now - timedelta(days=days))
    return ids


async def segment(client, query: str = "", headers: dict[str, str] = AUTH, name: str = "全部潜客") -> int:
    status, body = await call(client, "POST", SEGMENTS, headers, json={"name": name, "query": query})
    assert status == 201, body
    return body["id"]


async def test_the_preview_counts_recipients_and_explains_every_exclusion(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await seed(client)
    segment_id = await segment(client)
    status, body = await call(client, "POST", PREVIEW, AUTH, json={"segment_id": segment_id, "text": "{name}您好"})
    assert status == 200, body
    assert (body["total"], body["recipients"], body["by_channel"]) == (7, 3, {"wecom": 2, "oa": 1})
    assert [(m["member"], m["customers"], m["tasks"]) for m in body["members"]] == [("alice_wx", 1, 1),
                                                                                  ("bob_wx", 1, 1)]
    found = {e["reason"]: (e["count"], [s["lead_id"] for s in e["sample"]], e["label"]) for e in body["exclusions"]}
    assert {k: v[:2] for k, v in found.items()} == {
        "unsubscribed": (1, [ids["unsubscribed"]]), "no_wecom_relationship": (1, [ids["nothing"]]),
        "receive_limit": (1, [ids["limit"]]), "frequency_cap": (1, [ids["capped"]])}
    assert found["receive_limit"][2] == "本期已达企业微信客户群发接收上限"
    assert body["text_sample"] == "客户您好"  # one WeCom message for all of a member's customers
    assert body["receive_limit"]["period"] == "day" and body["receive_limit"]["limit"] == 1
    async with client.server.app[SESSIONS]() as session:  # a preview writes nothing
        assert await count(session, Batch) == 3 and await count(session, OutboxMessage) == 0


async def test_without_an_oa_template_oa_followers_are_excluded_and_said_why(app_client) -> None:
    client = await app_client(batch={"customer_limit_period": "day"})
    ids = await seed(client)
    status, body = await call(client, "POST", PREVIEW, AUTH, json={"segment_id": await segment(client), "text": "hi"})
    assert status == 200
    found = {e["reason"]: [s["lead_id"] for s in e["sample"]] for e in body["exclusions"]}
    assert found["no_oa_template"] == [ids["oa_only"]] and "oa" not in body["by_channel"]


async def test_sending_queues_one_task_per_member_and_reports_every_recipient(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)  # sandbox: rows are kept, never sent
    ids = await seed(client)
    _, token = await user_with_token(client, "sdr1", "sdr")
    segment_id = await segment(client)
    payload = {"segment_id": segment_id, "text": "{name}您好，{sender}为您准备了资料", "content_id": "wp1"}
    status, body = await call(client, "POST", BATCHES, bearer(token), json=payload)
    assert status == 202, body
    assert body["counts"]["channel"] == {"wecom": 2, "oa": 1} and body["sandbox"] is True
    assert sorted((t["member"], t["recipients"], t["status"]) for t in body["tasks"]) == [
        ("alice_wx", 1, "sandboxed"), ("bob_wx", 1, "sandboxed")]
    app = client.server.app
    async with app[SESSIONS]() as session:
        tasks = await outbox_rows(session, "wecom.groupmsg_task")
    assert sorted((r.payload["sender"], r.payload["external_userid"], r.status) for r in tasks) == [
        ("alice_wx", ["wm-ok"], "sandboxed"), ("bob_wx", ["wm-bob"], "sandboxed")]
    assert tasks[0].payload["content"] == "客户您好，alice为您准备了资料"
    assert tasks[0].payload["attachments"][0]["link"]["url"] == "https://example.com/wp1"

    # The job fans the OA follower out as a template message with a link tracked to their own lead.
    assert await run_batches(app[SESSIONS], app[SERVICES].wecom_api, app[CONFIG], app[CONVERSATION].links,
                             app[ENQUEUE]) == (1, 0)
    async with app[SESSIONS]() as session:
        (template,) = await outbox_rows(session, "oa.template")
        batch = await session.get(Batch, body["id"])
        assert batch is not None and batch.status == "sent"
    assert (template.lead_id, template.payload["openid"], template.status) == (ids["oa_only"], "o-ding", "sandboxed")
    assert template.payload["data"]["first"]["value"] == "丁您好，您的顾问为您准备了资料"
    target = app[CONVERSATION].links.verify(template.payload["url"].rsplit("/c/", 1)[1])
    assert (target.recipient_kind, target.recipient, target.source_code) == ("lead", str(ids["oa_only"]),
                                                                             f"batch:{body['id']}")

    status, view = await call(client, "GET", f"{BATCHES}/{body['id']}?limit=4", bearer(token))
    assert status == 200
    status, rest = await call(client, "GET", f"{BATCHES}/{body['id']}?after={view['next_after']}", bearer(token))
    outcomes = {r["lead_id"]: (r["code"], r["reason"]) for r in view["recipients"] + rest["recipients"]}
    assert outcomes == {ids["ok"]: ("sandboxed", None), ids["owner_route"]: ("sandboxed", None),
                        ids["unsubscribed"]: ("excluded", "unsubscribed"), ids["oa_only"]: ("sandboxed", None),
                        ids["nothing"]: ("excluded", "no_wecom_relationship"),
                        ids["limit"]: ("excluded", "receive_limit"), ids["capped"]: ("excluded", "frequency_cap")}
    assert view["created_by"] == "sdr1" and rest["next_after"] is None

    # Every recipient's outcome is on their timeline.
    status, timeline = await call(client, "GET", f"/api/leads/{ids['limit']}/timeline", AUTH)
    (line,) = [i for i in timeline["items"] if i["title"].startswith(f"群发消息 #{body['id']}")]
    assert line["status"] == "本期已达企业微信客户群发接收上限" and line["author"] == "sdr1"
    (entry,) = [e for e in await _audit(client) if e.action == "batch.send"]
    assert entry.after["channels"] == {"wecom": 2, "oa": 1} and "您好" not in str(entry.after)


async def _audit(client) -> list[AuditEntry]:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"segment_id": 999_999, "text": "hi"}, 404, "not_found"),
    ({"segment_id": "SEG", "text": ""}, 400, "empty_text"),
    ({"segment_id": "SEG", "text": "   "}, 400, "empty_text"),
    ({"segment_id": "SEG", "text": "汉" * 1400}, 400, "text_too_long"),
    ({"segment_id": "SEG", "text": "汉" * 4001}, 400, "invalid_body"),
    ({"segment_id": "SEG", "text": "您好 {phone}"}, 400, "bad_field"),
    ({"segment_id": "SEG", "text": "hi", "content_id": "nope"}, 400, "bad_link"),
    ({"segment_id": "SEG", "text": "hi", "content_id": "wp1",
      "miniprogram": {"title": "t", "appid": "wx1", "page": "pages/a", "pic_media_id": "m"}}, 400, "bad_link"),
    ({"segment_id": "SEG", "text": "hi", "channels": []}, 400, "invalid_body"),
    ({"segment_id": "SEG", "text": "hi", "extra": 1}, 400, "invalid_body"),
    ({"segment_id": True, "text": "hi"}, 400, "invalid_body"),
])
@pytest.mark.parametrize("path", [PREVIEW, BATCHES])
async def test_bad_input_is_a_clear_4xx_that_changes_nothing(app_client, path: str, payload: dict, status: int,
                                                             code: str) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    await seed(client)
    segment_id = await segment(client)
    payload = {k: segment_id if v == "SEG" else v for k, v in payload.items()}
    got, body = await call(client, "POST", path, AUTH, json=payload)
    assert (got, body["code"]) == (status, code), body
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, BatchTask) == 0 and await count(session, OutboxMessage) == 0
        assert await count(session, Batch) == 3  # the seed's past sends only


async def test_a_huge_body_is_a_413_and_an_unknown_batch_a_404(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    resp = await client.post(BATCHES, headers={**AUTH, "Content-Type": "application/json"},
                             data='{"segment_id": 1, "text": "' + "x" * 200_000 + '"}')
    assert resp.status == 413
    for raw in ("999999", "abc", "0"):
        status, body = await call(client, "GET", f"{BATCHES}/{raw}", AUTH)
        assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize("role", ["sales"])
async def test_a_role_without_batch_rights_is_refused_and_audited(app_client, role: str) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    await seed(client)
    segment_id = await segment(client)
    _, token = await user_with_token(client, "s1", role)
    for method, path, json in (("POST", PREVIEW, {"segment_id": segment_id, "text": "hi"}),
                               ("POST", BATCHES, {"segment_id": segment_id, "text": "hi"}),
                               ("GET", f"{BATCHES}/1", None), ("GET", SEGMENTS, None),
                               ("POST", SEGMENTS, {"name": "x", "query": ""})):
        status, body = await call(client, method, path, bearer(token), json=json)
        assert (status, body["code"]) == (403, "forbidden"), (method, path)
    denied = [e.action for e in await _audit(client) if e.outcome == "denied"]
    assert denied == ["batch.send", "batch.send", "batch.read", "batch.read", "segment.write"]
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, BatchRecipient) == 2 + 1  # the seed's only


async def test_a_team_leads_segment_reaches_only_the_team_whoever_sends_it(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    lead_id, lead_token = await user_with_token(client, "tl", "team_lead", team="华东")
    mate, _ = await user_with_token(client, "mate", "sales", team="华东")
    other, _ = await user_with_token(client, "other", "sales", team="华北")
    _, sdr_token = await user_with_token(client, "sdr2", "sdr")
    async with client.server.app[SESSIONS]() as session, session.begin():
        mine = await lead(session, "团队客户", wecom="wm-team", follow="mate_wx", owner=mate)
        await lead(session, "别队客户", wecom="wm-other", follow="other_wx", owner=other)
    segment_id = await segment(client, headers=bearer(lead_token), name="团队分群")
    for token in (lead_token, sdr_token):
        status, body = await call(client, "POST", PREVIEW, bearer(token), json={"segment_id": segment_id, "text": "hi"})
        assert (status, body["total"], body["members"]) == (200, 1, [{"member": "mate_wx", "customers": 1,
                                                                      "tasks": 1}])
    status, body = await call(client, "POST", BATCHES, bearer(sdr_token), json={"segment_id": segment_id, "text": "hi"})
    status, view = await call(client, "GET", f"{BATCHES}/{body['id']}", bearer(lead_token))
    assert [r["lead_id"] for r in view["recipients"]] == [mine]
    assert lead_id
