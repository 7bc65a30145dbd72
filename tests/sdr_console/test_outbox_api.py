"""GET /api/outbox: bearer-protected, lists rows with their status, filters and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.keys import SESSIONS
from bot.outbox.enqueue import enqueue
from storage.models import Lead
from tests.support.calls import AUTH


@pytest.fixture
async def client(app_client):
    return await app_client()  # sandbox mode


async def seed(client) -> int:
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = Lead(display_name="Alice", stage="lead", consent="revoked", profile={},
                    oa_last_interaction_at=datetime.now(UTC) - timedelta(hours=1))
        session.add(lead)
        await session.flush()
        for key, marketing in (("reply", False), ("promo", True)):
            await enqueue(session, target="oa", method="oa.custom_text", idempotency_key=key, sandbox=True,
                          payload={"openid": "o-alice", "content": f"{key} 内容", "marketing": marketing},
                          lead_id=lead.id)
        await enqueue(session, target="wecom", method="wecom.app_text", idempotency_key="notify", sandbox=True,
                      payload={"userid": "sdr-1", "content": "New MQL"})
        return lead.id


async def test_the_outbox_needs_a_token(client):
    assert (await client.get("/api/outbox")).status == 401
    assert (await client.get("/api/outbox", headers={"Authorization": "Bearer wrong"})).status == 401


async def test_rows_are_listed_newest_first_with_their_status(client):
    lead_id = await seed(client)
    resp = await client.get("/api/outbox", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert [(r["idempotency_key"], r["status"]) for r in body["items"]] == [
        ("notify", "sandboxed"), ("promo", "suppressed"), ("reply", "sandboxed")]
    promo = body["items"][1]
    assert set(promo) >= {"id", "method", "target", "status", "attempts", "last_error", "created_at", "sent_at",
                          "next_attempt_at", "lead_id", "payload"}
    assert (promo["method"], promo["target"], promo["lead_id"], promo["attempts"]) == (
        "oa.custom_text", "oa", lead_id, 0)
    assert "consent revoked" in promo["last_error"] and promo["payload"]["content"] == "promo 内容"
    assert promo["created_at"] and promo["sent_at"] is None


async def test_filters_and_paging(client):
    lead_id = await seed(client)

    async def keys(query: str) -> list[str]:
        resp = await client.get(f"/api/outbox?{query}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        return [r["idempotency_key"] for r in (await resp.json())["items"]]

    assert await keys("status=suppressed") == ["promo"]
    assert await keys("status=sent") == []
    assert await keys(f"lead_id={lead_id}") == ["promo", "reply"]
    assert await keys("method=wecom.app_text") == ["notify"]
    assert await keys("limit=1&offset=1") == ["promo"]
    for bad in ("status=nope", "limit=0", "offset=-1", "method=oa.nope", "lead_id=x"):
        resp = await client.get(f"/api/outbox?{bad}", headers=AUTH)
        assert resp.status == 400, bad
        assert (await resp.json())["error"] == "bad_parameter"
