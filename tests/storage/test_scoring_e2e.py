"""Scoring and lifecycle through the real endpoints: callbacks and a form push a prospect over the threshold,
the score explains itself, people move the lead on, and refused moves change nothing."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from bot.config.capture import build_capture, validate_capture
from bot.config.scoring import build_scoring
from bot.ingress.simulate import oa_event, oa_text
from bot.keys import ENGINE
from storage.models import LeadScore, LeadTag, StageTransition
from tests.support.calls import AUTH, send_oa
from tests.support.forms import FORMS, WECHAT_UA, capture_config, csrf_of
from tests.support.helpers import free_port, lead_ids, wait_processed

IN_WECHAT = {"User-Agent": WECHAT_UA}
PROFILE = {"name": "张伟", "phone": "13800138000", "company": "上海某某科技有限公司", "job_title": "director",
           "department": "hr", "company_size": "500_999", "company_type": "b2b", "consent": "yes"}
PRICING = {"name": "pricing", "keywords": ["价格"], "reply": "价格请见官网", "score_event": "visit_pricing"}


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    capture = build_capture({"forms": FORMS, "intents": [PRICING]})
    validate_capture(capture)
    # The demo form's request_demo (50) alone stays under 60: the pricing question afterwards crosses it.
    scoring = build_scoring({"motivation_threshold": 60, "ability_threshold": 25})
    config = dataclasses.replace(config, capture=capture, scoring=scoring)
    return await app_client(config, port=port)


async def fill_demo_form_in_wechat(client, fake, openid: str) -> None:
    fake.state.oauth_openid = openid
    page = await client.get("/f/demo?src=sales_card", headers=IN_WECHAT)
    assert page.status == 200
    resp = await client.post("/f/demo?src=sales_card", data={**PROFILE, "csrf": csrf_of(await page.text())},
                             headers=IN_WECHAT)
    assert resp.status == 200, await resp.text()


async def api(client, method: str, path: str, **kwargs):
    resp = await client.request(method, path, headers=AUTH, **kwargs)
    return resp.status, await resp.json()


async def test_callbacks_and_a_form_make_the_prospect_an_mql_with_history_and_an_explained_score(client, fake):
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_prospect", unionid="u_prospect")
    await send_oa(client, oa_event("o_prospect", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)

    await fill_demo_form_in_wechat(client, fake, "o_prospect")
    status, score = await api(client, "GET", f"/api/leads/{lead_id}/score")
    assert status == 200 and score["stage"] == "lead"
    assert score["ability"]["total"] == 8 + 15 + 5 + 10 and score["ability"]["high"]
    assert score["motivation"]["total"] == pytest.approx(50) and not score["motivation"]["high"]
    assert score["quadrant"] == "nurture" and score["quadrant_label"] == "高能力·低意向（培育）"
    async with engine.connect() as conn:
        assert set((await conn.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id))).scalars()) == {
            "nurture"}

    resp = await send_oa(client, oa_text("o_prospect", "想了解一下价格", 7_000_000_001))
    assert resp.status == 200
    await wait_processed(engine, expected=2)

    status, score = await api(client, "GET", f"/api/leads/{lead_id}/score")
    assert score["stage"] == "mql" and score["quadrant"] == "sales_ready"
    lines = score["contributions"]
    assert sum(c["current"] for c in lines if c["score"] == "ability") == score["ability"]["total"]
    assert sum(c["current"] for c in lines if c["score"] == "motivation") == pytest.approx(
        score["motivation"]["total"], abs=1e-9)
    assert {(c["rule"], c["attribute"], c["value"], c["points"]) for c in lines if c["score"] == "ability"} == {
        ("job_director", "job_title", "director", 8), ("dept_hr", "department", "hr", 15),
        ("size_500_999", "company_size", "500_999", 5), ("type_b2b", "company_type", "b2b", 10)}
    motivation = {c["event"]: c for c in lines if c["score"] == "motivation"}
    assert set(motivation) == {"request_demo", "visit_pricing"}
    for line in motivation.values():
        assert line["points"] >= line["current"] > 0.99 * line["points"]  # fresh: barely decayed
        assert line["touchpoint_id"] and line["occurred_at"]
    assert score["stored"]["quadrant"] == "sales_ready" and score["stored"]["current_rules"]

    status, stages = await api(client, "GET", f"/api/leads/{lead_id}/stages")
    (move,) = stages["history"]
    assert (move["from"], move["to"], move["actor"]) == ("lead", "mql", "system")
    assert move["touchpoint_id"] == motivation["visit_pricing"]["touchpoint_id"] and move["reason"]
    async with engine.connect() as conn:
        tags = set((await conn.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id))).scalars())
    assert "nurture" not in tags  # a quadrant's tags go when the lead leaves it

    # The same message again (WeChat's retry) changes nothing.
    await send_oa(client, oa_text("o_prospect", "想了解一下价格", 7_000_000_001))
    status, again = await api(client, "GET", f"/api/leads/{lead_id}/score")
    assert again["motivation"]["total"] == pytest.approx(score["motivation"]["total"], rel=1e-6)


async def test_people_move_the_lead_on_and_forbidden_moves_change_nothing(client, fake):
    engine = client.server.app[ENGINE]
    await send_oa(client, oa_event("o_walkin", "subscribe"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    path = f"/api/leads/{lead_id}/stage"

    status, body = await api(client, "POST", path, json={"to": "sal", "actor": "sales", "reason": "接受"})
    assert status == 409 and body["error"] == "transition_refused" and "不允许" in body["message"]
    status, body = await api(client, "POST", path, json={"to": "mql", "actor": "sdr",
                                                         "reason": "电话确认有预算"})
    # A service token acts as an admin: the transition names it, never a body's actor_id.
    assert status == 200 and body["stage"] == "mql" and body["transition"]["actor_id"] == "service-token"
    status, body = await api(client, "POST", path, json={"to": "sal", "actor": "sdr", "reason": "代销售接受"})
    assert status == 409 and "只能由" in body["message"]
    status, body = await api(client, "POST", path, json={"to": "returned", "actor": "sales",
                                                         "reason": "预算不足，半年后再联系"})
    assert status == 200 and body["stage"] == "returned"
    status, body = await api(client, "POST", path, json={"to": "mql", "actor": "sdr", "reason": "客户重新询价"})
    assert status == 200 and body["stage"] == "mql"  # a returned lead can become an MQL again

    for bad in ({}, {"to": "sal"}, {"to": "nowhere", "actor": "sales", "reason": "x"},
                {"to": "sal", "actor": "system", "reason": "x"}, {"to": "sal", "actor": "sales", "reason": " "},
                {"to": "sal", "actor": "sales", "actor_id": "wang", "reason": "x"}):
        status, body = await api(client, "POST", path, json=bad)
        assert status == 400 and body["error"] == "bad_field", bad
    resp = await client.post(path, data=b"{not json", headers=AUTH)
    assert resp.status == 400
    assert (await client.post(path, json={"to": "sal", "actor": "sales", "reason": "x"})).status == 401
    status, _ = await api(client, "POST", "/api/leads/999999/stage", json={"to": "sal", "actor": "sales",
                                                                            "reason": "x"})
    assert status == 404
    status, _ = await api(client, "GET", "/api/leads/999999/score")
    assert status == 404

    status, stages = await api(client, "GET", f"/api/leads/{lead_id}/stages")
    assert [(h["from"], h["to"], h["actor"]) for h in stages["history"]] == [
        ("lead", "mql", "sdr"), ("mql", "returned", "sales"), ("returned", "mql", "sdr")]
    async with engine.connect() as conn:
        assert len((await conn.execute(select(StageTransition.id))).all()) == 3
        assert (await conn.execute(select(LeadScore.quadrant).where(LeadScore.lead_id == lead_id))).scalar_one() \
            == "public_pool"


async def test_opting_out_makes_the_lead_unsubscribed_and_opting_in_brings_it_back(client):
    engine = client.server.app[ENGINE]
    await send_oa(client, oa_text("o_optout", "退订", 7_000_000_101))
    await wait_processed(engine, expected=1)
    await send_oa(client, oa_text("o_optout", "订阅", 7_000_000_102))
    await wait_processed(engine, expected=2)
    (lead_id,) = await lead_ids(engine)
    status, stages = await api(client, "GET", f"/api/leads/{lead_id}/stages")
    assert stages["stage"] == "lead"
    assert [(h["from"], h["to"], h["actor"], h["actor_id"]) for h in stages["history"]] == [
        ("lead", "unsubscribed", "system", "consent"), ("unsubscribed", "lead", "system", "consent")]
