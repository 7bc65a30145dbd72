"""Enrolment through the real endpoints: a prospect follows the OA and fills the demo form inside WeChat; the
form's touchpoint publishes FormSubmitted in the transaction that records it, the welcome journey enrols the
lead, and its first step queues the welcome template to the follower's OpenID."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from bot.config.capture import build_capture, validate_capture
from bot.config.core import load_config
from bot.ingress.simulate import oa_event
from bot.journeys.wiring import runner_of
from bot.keys import ENGINE
from storage.models import JourneyEnrolment, JourneyStep, Lead, OutboxMessage, utcnow
from tests.bot.journeys.test_runner import ROOT
from tests.storage.test_scoring_e2e import fill_demo_form_in_wechat
from tests.support.calls import send_oa
from tests.support.forms import FORMS, capture_config
from tests.support.helpers import free_port, lead_ids, wait_processed

EXAMPLE = load_config(ROOT / "config.example.toml")


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    capture = build_capture({"forms": FORMS})
    validate_capture(capture)
    config = dataclasses.replace(config, capture=capture, journeys=EXAMPLE.journeys,
                                 nurture=dataclasses.replace(EXAMPLE.nurture, quiet_hours=""),
                                 jobs=dataclasses.replace(config.jobs, enabled=("inbox_sweep",)))
    return await app_client(config, port=port)


async def test_a_form_filled_in_wechat_enrols_the_follower_in_the_welcome_series(client, fake):
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_welcome", unionid="u_welcome")
    await send_oa(client, oa_event("o_welcome", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    await fill_demo_form_in_wechat(client, fake, "o_welcome")
    async with engine.connect() as conn:
        enrolled = (await conn.execute(select(JourneyEnrolment.journey_id, JourneyEnrolment.lead_id,
                                              JourneyEnrolment.trigger))).all()
    # The form's points moved the lead through the nurture quadrant (the acceleration series enrols it) on to
    # sales_ready in the same transaction: it is an MQL, so acceleration ends at its first step; welcome goes on.
    assert sorted(tuple(e) for e in enrolled) == [("accelerate", lead_id, "quadrant:nurture"),
                                                  ("welcome", lead_id, "form:demo")]

    assert await runner_of(client.server.app).run_batch(utcnow()) == 2
    async with engine.connect() as conn:
        steps = (await conn.execute(select(JourneyStep.journey_id, JourneyStep.kind, JourneyStep.outcome,
                                           JourneyStep.reason)
                                    .where(JourneyStep.kind != "enrol").order_by(JourneyStep.id))).all()
        stage = (await conn.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one()
        sent = (await conn.execute(select(OutboxMessage.method, OutboxMessage.payload)
                                   .where(OutboxMessage.lead_id == lead_id,
                                          OutboxMessage.idempotency_key.like("journey:%")))).all()
    assert stage == "mql"
    assert [tuple(s) for s in steps][:2] == [("accelerate", "exit", "exited", "stage:mql"),
                                             ("welcome", "action", "sent", "ok")]
    assert [(m, p["openid"], p["template_id"]) for m, p in sent] == [("oa.template", "o_welcome", "welcome")]
