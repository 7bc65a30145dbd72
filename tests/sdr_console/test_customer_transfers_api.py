"""POST /api/customer-transfers and GET /api/customer-transfers/{id}: managers and admins hand a member's WeCom
customers to a colleague; each customer's outcome (WeCom's limits included) in Chinese with a code."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.handoff.transfer_poll import poll_transfers
from bot.keys import SERVICES, SESSIONS
from storage.models import AuditEntry, Lead, OutboxMessage, User, utcnow
from tests.sdr_console.console_support import bearer, call, user_with_token
from tests.support.calls import AUTH
from tests.support.customer_transfers import add_customers, add_member
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.fakes.wechat_transfer import complete, transfers_of
from tests.support.forms import fake_state

URL = "/api/customer-transfers"


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = fake_state()
    state.register_employee("bob_wx")
    return state


async def seed(client, n: int, state: FakeWeChatState | None = None) -> tuple[int, int, list[int]]:
    async with client.server.app[SESSIONS]() as session, session.begin():
        alice = await add_member(session, "alice", "alice_wx")
        bob = await add_member(session, "bob", "bob_wx")
        leads = await add_customers(session, "alice_wx", n, owner_user_id=alice, state=state)
    return alice, bob, leads


async def written(client) -> tuple[int, int]:
    """Outbox rows and transfer audit entries: what a refused request must not have added."""
    async with client.server.app[SESSIONS]() as session:
        rows = (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar()
        entries = (await session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.target_kind == "customer_transfer"))).scalar()
    return rows, entries


async def test_a_manager_starts_a_transfer_of_250_customers_in_three_batches(app_client) -> None:
    client = await app_client()  # sandbox: the rows are kept, never sent
    alice, bob, leads = await seed(client, 250)
    _, token = await user_with_token(client, "boss", "manager")
    status, body = await call(client, "POST", URL, bearer(token), json={"from_user": "alice", "to_user": bob})
    assert status == 202, body
    assert (body["from_user"], body["to_user"], body["customers"], body["sandbox"]) == ("alice", "bob", 250, True)
    assert [(b["batch"], b["customers"], b["status"]) for b in body["batches"]] == [
        (1, 100, "sandboxed"), (2, 100, "sandboxed"), (3, 50, "sandboxed")]

    status, view = await call(client, "GET", f"{URL}/{body['id']}", bearer(token))
    assert status == 200
    assert (view["from_user"], view["to_user"], view["done"], view["counts"]) == ("alice", "bob", False,
                                                                                  {"sandboxed": 250})
    assert [c["lead_id"] for c in view["customers"]] == leads
    assert view["customers"][0]["message"] == "沙箱模式：未发送给企业微信"
    (entry,) = [e for e in await _audit(client) if e.target_kind == "customer_transfer"]
    assert (entry.id, entry.actor_label, entry.after["customers"]) == (body["id"], "boss", 250)


async def _audit(client) -> list[AuditEntry]:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


@pytest.mark.parametrize("role", ["sales", "sdr", "team_lead"])
async def test_salespeople_sdrs_and_team_leads_are_refused_and_audited(app_client, role: str) -> None:
    client = await app_client()
    alice, bob, leads = await seed(client, 3)
    _, token = await user_with_token(client, f"u_{role}", role)
    status, body = await call(client, "POST", URL, bearer(token), json={"from_user": "alice", "to_user": "bob"})
    assert (status, body["code"]) == (403, "forbidden")
    assert await written(client) == (0, 0)
    status, _ = await call(client, "GET", f"{URL}/1", bearer(token))
    assert status == 403
    denied = [e for e in await _audit(client) if e.outcome == "denied"]
    assert [e.action for e in denied] == ["customer.transfer", "customer.transfer"]


@pytest.mark.parametrize(("payload", "code"), [
    ({"from_user": "nobody", "to_user": "bob"}, "unknown_user"),
    ({"from_user": "alice", "to_user": 999_999}, "unknown_user"),
    ({"from_user": "alice", "to_user": "alice"}, "same_user"),
    ({"from_user": "alice", "to_user": "nowx"}, "no_wecom_userid"),
    ({"from_user": "alice", "to_user": "gone"}, "user_disabled"),
    ({"from_user": "bob", "to_user": "alice"}, "no_customers"),
    ({"from_user": "alice", "to_user": "bob", "leads": [999_999]}, "not_customer"),
    ({"from_user": "alice", "to_user": "bob", "leads": []}, "invalid_body"),
    ({"from_user": "alice", "to_user": "bob", "leads": [True]}, "invalid_body"),
    ({"from_user": "alice", "to_user": "bob", "message": "长" * 201}, "invalid_body"),
    ({"from_user": "alice", "to_user": "bob", "extra": 1}, "invalid_body"),
    ({"from_user": "alice"}, "invalid_body"),
])
async def test_bad_input_is_a_400_that_changes_nothing(app_client, payload: dict, code: str) -> None:
    client = await app_client()
    await seed(client, 3)
    async with client.server.app[SESSIONS]() as session, session.begin():
        await add_member(session, "nowx", None)
        gone = await session.get(User, await add_member(session, "gone", "gone_wx"))
        assert gone is not None
        gone.disabled_at = utcnow()
    status, body = await call(client, "POST", URL, AUTH, json=payload)
    assert status == 400, body
    assert body["code"] == code, body
    assert await written(client) == (0, 0)


@pytest.mark.parametrize("transfer_id", ["999999", "abc", "0"])
async def test_an_unknown_transfer_is_a_404(app_client, transfer_id: str) -> None:
    client = await app_client()
    status, body = await call(client, "GET", f"{URL}/{transfer_id}", AUTH)
    assert (status, body["code"]) == (404, "not_found")


async def test_live_the_limit_is_reported_and_the_owner_moves_after_takeover(app_client, fake) -> None:
    client = await app_client(api_base_url=fake.base_url)  # live: the app's own outbox sender calls the fake
    alice, bob, leads = await seed(client, 4, fake.state)
    transfers_of(fake.state).transferred_before("wm-3", 2, fake.state.clock() - 30 * 86400)
    status, body = await call(client, "POST", URL, AUTH,
                              json={"from_user": alice, "to_user": "bob", "leads": [leads[0], leads[3]]})
    assert status == 202 and body["sandbox"] is False and body["customers"] == 2
    view = await _view_when(client, body["id"], lambda v: v["batches"][0]["status"] == "sent")
    by_lead = {c["lead_id"]: c for c in view["customers"]}
    assert (by_lead[leads[3]]["code"], by_lead[leads[3]]["errcode"], by_lead[leads[3]]["final"]) == (
        "rejected", 40128, True)
    assert by_lead[leads[3]]["message"] == "该客户 90 天内已转接 2 次，企业微信不允许再次转接"
    assert (by_lead[leads[0]]["code"], by_lead[leads[0]]["final"]) == ("waiting", False)

    app = client.server.app
    assert await poll_transfers(app[SESSIONS], app[SERVICES].wecom_api) == 1
    complete(fake.state)
    assert await poll_transfers(app[SESSIONS], app[SERVICES].wecom_api, now=utcnow() + timedelta(hours=2)) == 1
    status, view = await call(client, "GET", f"{URL}/{body['id']}", AUTH)
    by_lead = {c["lead_id"]: c for c in view["customers"]}
    assert (by_lead[leads[0]]["code"], by_lead[leads[0]]["status"], by_lead[leads[0]]["owner_moved"]) == (
        "taken_over", 1, True)
    assert view["done"] is True and view["counts"] == {"taken_over": 1, "rejected": 1}
    async with app[SESSIONS]() as session:
        owner = dict((await session.execute(select(Lead.id, Lead.owner_user_id).where(Lead.id.in_(leads)))).all())
    assert owner == {leads[0]: bob, leads[1]: alice, leads[2]: alice, leads[3]: alice}


async def _view_when(client, transfer_id: int, ready, timeout_s: float = 10.0) -> dict:
    started = time.monotonic()
    while True:
        status, view = await call(client, "GET", f"{URL}/{transfer_id}", AUTH)
        assert status == 200
        if ready(view):
            return view
        assert time.monotonic() - started < timeout_s, view
        await asyncio.sleep(0.05)


async def test_the_openapi_document_describes_both_routes(app_client) -> None:
    client = await app_client()
    status, doc = await call(client, "GET", "/api/openapi.json", AUTH)
    assert status == 200
    post = doc["paths"][URL]["post"]
    assert "202" in post["responses"] and "400" in post["responses"]
    assert "404" in doc["paths"][URL + "/{transfer_id}"]["get"]["responses"]
