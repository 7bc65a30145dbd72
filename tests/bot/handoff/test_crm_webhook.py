"""The CRM webhook end to end: a real aiohttp receiver on a local port that checks the signature. It fails twice
(500), then succeeds: it keeps the accepted lead exactly once (the same idempotency key on every attempt), and
the delivery log (GET /api/webhook-deliveries) shows the three attempts; a resend sends the same delivery again;
a 4xx fails at once; accepting again enqueues nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from bot.keys import OUTBOX_SENDER, SESSIONS
from leads.events import StageChanged
from leads.identity import PHONE
from leads.lifecycle import transition
from storage.models import Identity, OutboxMessage, utcnow
from storage.repos.assignments import assign_lead
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.stages import change_stages
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH

SECRET = "crm-secret-0123456789abcdef"


class Receiver:
    """The CRM: verifies X-LeadRelay-Signature as the README tells receivers to, keeps each key once."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses  # answered in turn; 200 once they run out
        self.calls: list[str] = []
        self.kept: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        parts = dict(p.split("=", 1) for p in request.headers.get("X-LeadRelay-Signature", "").split(","))
        mac = hmac.new(SECRET.encode(), parts.get("t", "").encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, parts.get("v1", "")) or abs(time.time() - int(parts["t"])) > 300:
            self.bad_signatures += 1
            return web.Response(status=401)
        assert request.headers["X-LeadRelay-Event"] == "lead.accepted"
        key = request.headers["X-LeadRelay-Idempotency-Key"]
        self.calls.append(key)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.kept.setdefault(key, json.loads(raw))  # a repeat of a key it has is acknowledged, not kept again
        return web.Response(status=status, text="oops" if status >= 500 else "ok")


@pytest.fixture
async def crm(aiohttp_server):
    async def start(statuses: list[int]) -> tuple[Receiver, str]:
        receiver = Receiver(statuses)
        app = web.Application()
        app.router.add_post("/crm/leads", receiver.handle)
        server = await aiohttp_server(app)
        return receiver, f"http://127.0.0.1:{server.port}/crm/leads"
    return start


async def _accepted(client) -> tuple[int, str]:
    """zhang accepts a lead routed to them; its id and zhang's token."""
    zhang_id, token = await user_with_token(client, "zhang", "sales", "华东")
    lead_id = await make_lead(client, "o-crm")
    async with client.server.app[SESSIONS]() as s, s.begin():
        s.add(Identity(lead_id=lead_id, kind=PHONE, app="", value="13812345678", verified=True))
        tx = EventTx(s, NO_SUBSCRIBERS)
        await change_stages(tx, [StageChanged.of(lead_id, transition("lead", "mql", "system", "评分", "q"), utcnow())])
        await assign_lead(tx, lead_id, zhang_id, rule="routing.default_owner", reason="", at=utcnow())
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/accept", bearer(token))
    assert status == 200, body
    return lead_id, token


async def _until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _row(client) -> OutboxMessage:
    async with client.server.app[SESSIONS]() as s:
        return (await s.execute(select(OutboxMessage).where(OutboxMessage.target == "crm"))).scalar_one()


async def _due_now(client, row_id: int) -> None:
    """Skip the backoff's wait (the clock is real) and wake the app's sender."""
    async with client.server.app[SESSIONS]() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(next_attempt_at=utcnow()))
    client.server.app[OUTBOX_SENDER].wake()


async def test_two_failures_then_delivered_once_with_three_attempts_logged(app_client, crm):
    receiver, url = await crm([500, 500])
    client = await app_client(crm={"webhook_url": url, "webhook_secret": SECRET})  # sandbox mode: the CRM still gets it
    lead_id, token = await _accepted(client)
    for failures in (1, 2):
        async def failed(n: int = failures) -> bool:
            row = await _row(client)
            return row.attempts == n and row.status == "pending"
        await _until(failed, f"failure {failures}")
        row = await _row(client)
        wait = row.next_attempt_at - utcnow()
        assert timedelta(seconds=5 * 2 ** (failures - 1) - 1) < wait <= timedelta(seconds=5 * 2 ** failures)  # backoff
        await _due_now(client, row.id)

    async def sent() -> bool:
        return (await _row(client)).status == "sent"
    await _until(sent, "delivery")
    row = await _row(client)
    key = row.idempotency_key
    assert key == f"lead-accepted-{row.payload['assignment_id']}"
    assert receiver.calls == [key, key, key] and receiver.bad_signatures == 0
    assert list(receiver.kept) == [key]
    doc = receiver.kept[key]
    assert doc["lead"]["id"] == lead_id and doc["lead"]["stage"] == "sal"
    phones = [i["value"] for i in doc["lead"]["identities"] if i["kind"] == PHONE]
    assert phones == ["13812345678"]  # the company's own CRM gets the phone
    assert doc["salesperson"]["username"] == "zhang"

    status, log = await call(client, "GET", "/api/webhook-deliveries", AUTH)
    assert status == 200
    [item] = log["items"]
    assert (item["status"], item["attempts"], item["idempotency_key"], item["lead_id"]) == ("sent", 3, key, lead_id)
    assert [a["status_code"] for a in item["attempt_log"]] == [500, 500, 200]
    assert [a["attempt"] for a in item["attempt_log"]] == [1, 2, 3]
    assert "13812345678" not in json.dumps(log)  # the log never shows the body
    assert (await call(client, "GET", "/api/webhook-deliveries", bearer(token)))[0] == 403

    # Accepting again enqueues nothing; a resend sends the same delivery, which the receiver keeps once.
    assert (await call(client, "POST", f"/api/leads/{lead_id}/accept", bearer(token)))[0] == 409
    status, resent = await call(client, "POST", f"/api/webhook-deliveries/{row.id}/resend", AUTH)
    assert (status, resent["status"], resent["idempotency_key"]) == (200, "pending", key)

    async def delivered_again() -> bool:
        return len(receiver.calls) == 4 and (await _row(client)).status == "sent"
    await _until(delivered_again, "the resend")
    assert receiver.calls[-1] == key and list(receiver.kept) == [key]
    status, log = await call(client, "GET", "/api/webhook-deliveries", AUTH)
    assert [a["attempt"] for a in log["items"][0]["attempt_log"]] == [1, 2, 3, 4]
    async with client.server.app[SESSIONS]() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.target == "crm"))).scalar_one() == 1
    entries = await audit_rows(client, action="webhook.resend")
    assert [e.target_id for e in entries] == [str(row.id)]
    assert (await call(client, "POST", "/api/webhook-deliveries/999999/resend", AUTH))[0] == 404


async def test_a_4xx_fails_at_once(app_client, crm):
    receiver, url = await crm([422])
    client = await app_client(crm={"webhook_url": url, "webhook_secret": SECRET})
    await _accepted(client)

    async def failed() -> bool:
        return (await _row(client)).status == "failed"
    await _until(failed, "the permanent failure")
    row = await _row(client)
    assert row.attempts == 1 and "422" in (row.last_error or "")
    status, log = await call(client, "GET", "/api/webhook-deliveries?status=failed", AUTH)
    assert [a["status_code"] for a in log["items"][0]["attempt_log"]] == [422]
    assert receiver.kept == {}


async def test_without_a_url_nothing_is_recorded(app_client):
    client = await app_client()
    await _accepted(client)
    async with client.server.app[SESSIONS]() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.target == "crm"))).scalar_one() == 0


async def test_a_delivery_of_an_erased_lead_is_not_resent(app_client, crm):
    """PIPL erasure empties the payload: re-queued, the row would only crash the sender (no body to sign)."""
    receiver, url = await crm([422])
    client = await app_client(crm={"webhook_url": url, "webhook_secret": SECRET})
    lead_id, _ = await _accepted(client)

    async def failed() -> bool:
        return (await _row(client)).status == "failed"
    await _until(failed, "the permanent failure")
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/erase", AUTH)
    assert status == 200, body
    before = await _row(client)
    assert before.payload == {}

    status, body = await call(client, "POST", f"/api/webhook-deliveries/{before.id}/resend", AUTH)
    assert (status, body["code"]) == (409, "delivery_erased") and body["message"], body
    after = await _row(client)
    assert (after.status, after.attempts, after.next_attempt_at, after.last_error) == (
        before.status, before.attempts, before.next_attempt_at, before.last_error)
    assert await audit_rows(client, action="webhook.resend") == []
    assert receiver.calls == [before.idempotency_key]  # the one failed attempt, nothing since
