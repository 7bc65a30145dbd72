"""PIPL erasure and WeCom customer transfers (storage/repos/transfers.py ``erase_customers``): a batch row names
up to 100 customers and has no lead_id, so the erased person's external_userid must be taken out of its payload
and WeCom's answers on it by content, the other customers left as they were — on both backends, with the rows
written by the real transfer, sender and poll against the fake WeCom."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.crypto.keyring import KeyRing, Purpose
from bot.handoff.transfer import Actor, pick_customers, start_transfer
from bot.handoff.transfer_poll import poll_transfers
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.sender import OutboxSender
from leads.customer_transfer import METHOD, batch_outcomes
from storage.db import session_factory
from storage.models import AuditEntry, OutboxMessage, User
from storage.repos.erasure import erase_lead
from storage.repos.transfers import ACTION, get_transfer
from tests.support.clock import Clock
from tests.support.customer_transfers import add_customers, add_member
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.fakes.wechat_transfer import complete

HASHER = KeyRing([b"transfer-erasure-key-0123456789abcdefghij"]).hasher(Purpose.TOMBSTONE)
ADMIN = Actor(None, "service-token")


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = FakeWeChatState()
    state.register_employee("bob_wx")
    state.register_employee("alice_wx")
    return state


async def transfer(sessions, from_id: int, to_id: int, lead_ids: list[int] | None, *, sandbox: bool) -> int:
    async with sessions() as session, session.begin():
        from_user, to_user = await session.get(User, from_id), await session.get(User, to_id)
        customers = await pick_customers(session, from_user, lead_ids)
        started = await start_transfer(session, enqueue, from_user=from_user, to_user=to_user, customers=customers,
                                       sandbox=sandbox, actor=ADMIN)
        return started.id


async def test_erasure_takes_the_person_out_of_transfer_batches_and_leaves_the_others(
        fake, wecom, engine) -> None:
    sessions = session_factory(engine)
    clock = Clock()
    async with sessions() as session, session.begin():
        alice, bob = await add_member(session, "alice", "alice_wx"), await add_member(session, "bob", "bob_wx")
        leads = await add_customers(session, "alice_wx", 3, state=fake.state)
    # A live transfer, sent and polled until WeCom reports 接替完毕: ids in the payload, WeCom's per-customer
    # answer, the polled results and the moved leads in the response.
    live = await transfer(sessions, alice, bob, None, sandbox=False)
    assert await OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0).run_once() == 1
    assert complete(fake.state) == 3
    assert await poll_transfers(sessions, wecom, now=clock()) == 1
    # Then (sandbox) the erased customer alone, handed back: a batch with nobody left in it once erased.
    alone = await transfer(sessions, bob, alice, [leads[0]], sandbox=True)
    async with sessions() as session:
        before = (await get_transfer(session, live)).batches[0]
    assert before.response is not None and set(before.response["takeover"]) == {"wm-0", "wm-1", "wm-2"}
    assert sorted(before.response["moved"]) == leads

    async with sessions() as session, session.begin():
        assert await erase_lead(session, leads[0], clock(), hasher=HASHER)

    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.method == METHOD)
                                      .order_by(OutboxMessage.id))).scalars().all()
        audit = (await session.execute(select(AuditEntry.before, AuditEntry.after)
                                       .where(AuditEntry.action == ACTION))).all()
        record, emptied = await get_transfer(session, live), await get_transfer(session, alone)
    assert len(rows) == 2 and len(audit) == 2
    stored = json.dumps([[r.payload, r.response, r.last_error] for r in rows] + [list(a) for a in audit])
    assert "wm-0" not in stored  # the erased customer's external_userid: nowhere
    assert "wm-1" in stored and "wm-2" in stored  # the others': untouched

    sent, sandboxed = rows
    assert sent.payload["external_userid"] == ["wm-1", "wm-2"] and sent.payload["lead_ids"] == leads[1:]
    assert sent.payload["erased"] == 1  # the batch's customers plus its erased: the 3 of the call
    assert sent.status == "sent" and sorted(sent.response["moved"]) == leads[1:]
    assert [c["external_userid"] for c in sent.response["customer"]] == ["wm-1", "wm-2"]
    assert set(sent.response["takeover"]) == {"wm-1", "wm-2"}
    assert (sandboxed.payload["external_userid"], sandboxed.payload["lead_ids"], sandboxed.payload["erased"]) == (
        [], [], 1)
    assert sandboxed.status == "cancelled"  # never to be sent with nobody in it
    # The transfer still reads: the two remaining customers with their outcomes; the totals stay in the audit.
    assert record is not None and record.detail["customers"] == 3
    outcomes = {o.lead_id: o.code for n, b in enumerate(record.batches, 1)
                for o in batch_outcomes(n, b.status, b.attempts, b.payload, b.response)}
    assert outcomes == {leads[1]: "taken_over", leads[2]: "taken_over"}
    assert emptied is not None and [b.status for b in emptied.batches] == ["cancelled"]
