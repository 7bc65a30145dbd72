"""Handing a member's WeCom customers to a colleague: batches of ≤ 100 through the outbox, WeCom's per-customer
answer (its 90-day limit reported), transfer_result polled until final, the owner moved on 接替完毕 — against
the fake WeCom server, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.errors import WeChatAPIError
from bot.handoff.transfer import Actor, TransferRefused, check_users, pick_customers, start_transfer
from bot.handoff.transfer_poll import GIVE_UP, poll_transfers
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.sender import OutboxSender
from leads.customer_transfer import TOO_OFTEN, batch_outcomes
from storage.db import session_factory
from storage.models import Assignment, AssignmentEvent, Lead, OutboxMessage, User, utcnow
from storage.repos.transfers import get_transfer
from tests.support.clock import Clock
from tests.support.customer_transfers import add_customers, add_member
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.fakes.wechat_transfer import complete, refuse, transfers_of

TRANSFER = "/cgi-bin/externalcontact/transfer_customer"
RESULT = "/cgi-bin/externalcontact/transfer_result"
ADMIN = Actor(None, "service-token")


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = FakeWeChatState()
    state.register_employee("bob_wx")
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)


async def members(sessions) -> tuple[User, User]:
    async with sessions() as session, session.begin():
        alice = await add_member(session, "alice", "alice_wx")
        bob = await add_member(session, "bob", "bob_wx")
    async with sessions() as session:
        return await session.get(User, alice), await session.get(User, bob)


async def start(sessions, alice: User, bob: User, lead_ids: list[int] | None = None, *, sandbox: bool = False):
    async with sessions() as session, session.begin():
        customers = await pick_customers(session, alice, lead_ids)
        return await start_transfer(session, enqueue, from_user=alice, to_user=bob, customers=customers,
                                    sandbox=sandbox, actor=ADMIN, message="您好，后续由同事为您服务")


async def outcomes(sessions, transfer_id: int) -> dict[int, object]:
    async with sessions() as session:
        record = await get_transfer(session, transfer_id)
    assert record is not None
    return {o.lead_id: o for n, b in enumerate(record.batches, 1)
            for o in batch_outcomes(n, b.status, b.attempts, b.payload, b.response)}


async def owners(sessions, lead_ids: list[int]) -> dict[int, int | None]:
    async with sessions() as session:
        rows = await session.execute(select(Lead.id, Lead.owner_user_id).where(Lead.id.in_(lead_ids)))
        return dict(rows.all())


async def test_250_customers_take_three_calls_and_the_owner_moves_once_wecom_reports_takeover(
        fake, wecom, engine, sessions, clock) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        leads = await add_customers(session, "alice_wx", 250, owner_user_id=alice.id, state=fake.state)
        session.add(Assignment(lead_id=leads[0], user_id=alice.id, rule="manual", status="accepted"))
    started = await start(sessions, alice, bob)
    assert started.customers == 250 and [n for _, n in started.batches] == [100, 100, 50]

    sender = OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0)
    assert await sender.run_once() == 3
    calls = fake.state.requests_to(TRANSFER)
    assert sorted(len(c.json["external_userid"]) for c in calls) == [50, 100, 100]
    assert {(c.json["handover_userid"], c.json["takeover_userid"]) for c in calls} == {("alice_wx", "bob_wx")}
    assert calls[0].json["transfer_success_msg"] == "您好，后续由同事为您服务"

    # Right after the calls: every customer is waiting (WeCom takes over after 24 h); nobody moved yet.
    assert await poll_transfers(sessions, wecom, now=clock()) == 3
    assert fake.state.count(RESULT) == 1  # one call for the pair, not one per batch
    assert {o.code for o in (await outcomes(sessions, started.id)).values()} == {"waiting"}
    assert set((await owners(sessions, leads)).values()) == {alice.id}
    assert await poll_transfers(sessions, wecom, now=clock()) == 0  # not due again before an hour
    assert fake.state.count(RESULT) == 1

    assert refuse(fake.state, "wm-1") == 1
    assert complete(fake.state) == 249
    clock.advance(2 * 3600)
    assert await poll_transfers(sessions, wecom, now=clock()) == 3
    result = await outcomes(sessions, started.id)
    assert result[leads[1]].code == "refused" and result[leads[1]].message == "客户拒绝"
    assert result[leads[0]].code == "taken_over" and result[leads[0]].owner_moved
    assert all(o.final for o in result.values())
    moved = await owners(sessions, leads)
    assert moved[leads[1]] == alice.id
    assert [lead for lead, owner in moved.items() if owner == bob.id] == [x for x in leads if x != leads[1]]
    async with sessions() as session:
        lead0 = await session.get(Lead, leads[0])
        assert lead0 is not None and lead0.profile["wecom_owner"] == "bob_wx"  # later message tasks: bob
        (event,) = (await session.execute(select(AssignmentEvent))).scalars()
        assert (event.lead_id, event.kind, event.detail["transfer_id"], event.detail["to_user_id"]) == (
            leads[0], "transfer", started.id, bob.id)

    # Final: no more calls to WeCom, however often the job runs.
    clock.advance(2 * 3600)
    assert await poll_transfers(sessions, wecom, now=clock()) == 0
    assert fake.state.count(RESULT) == 2


async def test_the_90_day_limit_is_reported_per_customer_not_hidden(fake, wecom, engine, sessions, clock) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        leads = await add_customers(session, "alice_wx", 3, state=fake.state)
    transfers_of(fake.state).transferred_before("wm-2", 2, fake.state.clock() - 10 * 86400)
    started = await start(sessions, alice, bob)
    await OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0).run_once()
    await poll_transfers(sessions, wecom, now=clock())
    result = await outcomes(sessions, started.id)
    limited = result[leads[2]]
    assert (limited.code, limited.errcode, limited.final) == ("rejected", TOO_OFTEN, True)
    assert "90 天内已转接 2 次" in limited.message
    assert [result[x].code for x in leads[:2]] == ["waiting", "waiting"]

    # A second transfer of the same customers while they wait: WeCom says they are being transferred.
    again = await start(sessions, alice, bob, leads[:1])
    await OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0).run_once()
    (busy,) = (await outcomes(sessions, again.id)).values()
    assert (busy.code, busy.errcode, busy.message) == ("rejected", 40129, "该客户正在转接中，无法再次转接")


async def test_customers_wecom_never_settles_are_recorded_as_no_record_after_a_week(
        fake, wecom, engine, sessions, clock) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        leads = await add_customers(session, "alice_wx", 2, state=fake.state)
    started = await start(sessions, alice, bob)
    await OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0).run_once()
    transfers_of(fake.state).records.clear()  # WeCom forgot them
    clock.advance(GIVE_UP.total_seconds() + 3600)
    assert await poll_transfers(sessions, wecom, now=clock()) == 1
    result = await outcomes(sessions, started.id)
    assert {(o.code, o.status, o.final) for o in result.values()} == {("no_record", 5, True)}
    assert set((await owners(sessions, leads)).values()) == {None}


async def test_only_the_members_own_wecom_customers_are_picked(fake, sessions) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        recorded = await add_customers(session, "alice_wx", 2, prefix="wa")
        unrecorded_owned = await add_customers(session, None, 1, prefix="wo", owner_user_id=alice.id)
        others = await add_customers(session, "carol_wx", 1, prefix="wc", owner_user_id=alice.id)
        no_wecom = Lead(display_name="no wecom", owner_user_id=alice.id, profile={"wecom_owner": "alice_wx"})
        session.add(no_wecom)
        await session.flush()
    async with sessions() as session:
        picked = await pick_customers(session, alice, None)
        assert [c.lead_id for c in picked] == recorded + unrecorded_owned
        assert [c.external_userid for c in picked] == ["wa-0", "wa-1", "wo-0"]
        with pytest.raises(TransferRefused) as refused:
            await pick_customers(session, alice, [recorded[0], others[0], no_wecom.id])
        assert refused.value.code == "not_customer" and str(others[0]) in refused.value.message
        with pytest.raises(TransferRefused) as none:
            await pick_customers(session, bob, None)
        assert none.value.code == "no_customers"


async def test_users_are_checked_before_anything_is_written(sessions, engine) -> None:
    alice, bob = await members(sessions)
    cases = [(alice, alice, "same_user")]
    async with sessions() as session, session.begin():
        nowx = await session.get(User, await add_member(session, "nowx", None))
        gone = await session.get(User, await add_member(session, "gone", "gone_wx"))
        assert gone is not None and nowx is not None
        gone.disabled_at = utcnow()
    cases += [(alice, nowx, "no_wecom_userid"), (nowx, bob, "no_wecom_userid"), (alice, gone, "user_disabled")]
    for from_user, to_user, code in cases:
        with pytest.raises(TransferRefused) as refused:
            check_users(from_user, to_user)
        assert refused.value.code == code
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar() == 0


async def test_sandbox_rows_are_kept_and_nothing_is_polled(fake, wecom, sessions) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        await add_customers(session, "alice_wx", 120, state=fake.state)
    started = await start(sessions, alice, bob, sandbox=True)
    assert {o.code for o in (await outcomes(sessions, started.id)).values()} == {"sandboxed"}
    assert await poll_transfers(sessions, None) == 0
    assert await poll_transfers(sessions, wecom) == 0
    assert fake.state.count(TRANSFER) == fake.state.count(RESULT) == 0


async def test_the_fake_refuses_more_than_100_and_unknown_customers(fake, wecom) -> None:
    with pytest.raises(WeChatAPIError) as too_many:
        await wecom.transfer_customer("alice_wx", "bob_wx", [f"wm-{i}" for i in range(101)])
    assert too_many.value.errcode == 40058
    fake.state.register_external_contact("wm-known", "客户", follow_user=["alice_wx"])
    answer = await wecom.transfer_customer("alice_wx", "bob_wx", ["wm-known", "wm-unknown"])
    assert [(c["external_userid"], c["errcode"]) for c in answer["customer"]] == [
        ("wm-known", 0), ("wm-unknown", 40096)]
    page = await wecom.transfer_result("alice_wx", "bob_wx")
    assert [(c["external_userid"], c["status"]) for c in page["customer"]] == [("wm-known", 2)]
    assert page["customer"][0]["takeover_time"] >= fake.state.clock() + timedelta(hours=23).total_seconds()


async def test_a_member_who_left_wecom_goes_through_the_resigned_apis(fake, wecom, engine, sessions, clock) -> None:
    alice, bob = await members(sessions)
    async with sessions() as session, session.begin():
        leads = await add_customers(session, "alice_wx", 2, state=fake.state)
        customers = await pick_customers(session, alice, None)
        started = await start_transfer(session, enqueue, from_user=alice, to_user=bob, customers=customers,
                                       sandbox=False, actor=ADMIN, resigned=True)
    transfers_of(fake.state).resign("alice_wx")
    await OutboxSender(engine, ApiClients(wecom=wecom), clock=clock, jitter=0.0).run_once()
    (call,) = fake.state.requests_to("/cgi-bin/externalcontact/resigned/transfer_customer")
    assert "transfer_success_msg" not in call.json and fake.state.count(TRANSFER) == 0
    complete(fake.state)
    assert await poll_transfers(sessions, wecom, now=clock()) == 1
    assert fake.state.count("/cgi-bin/externalcontact/resigned/transfer_result") == 1
    assert {o.code for o in (await outcomes(sessions, started.id)).values()} == {"taken_over"}
    assert set((await owners(sessions, leads)).values()) == {bob.id}
