"""No outbound call holds inbox locks (issue 11, point 9): WeChat lookups (``user/info`` for a follower's
UnionID, ``externalcontact/get`` for a WeCom contact) run after the ack and outside the inbox transaction
(bot/inbox/lookups.py), so a slow WeChat delays only the event that needs it; the end result is unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from bot.ingress.simulate import oa_event, oa_text, wecom_contact_event
from bot.keys import ENGINE
from storage.models import Identity, InboxEvent, Touchpoint
from tests.support.calls import send_oa, send_wecom
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.helpers import CORP_ID, OA_APP_ID, count, wait_processed

SLOW_S = 5.0


@pytest.fixture
async def fake():
    state = FakeWeChatState(oa_apps={OA_APP_ID: "oa-secret"}, corp_id=CORP_ID)
    async with FakeWeChatServer(state) as server:
        yield server


async def kinds_of(engine, value: str) -> list[str]:
    """The touchpoint kinds of the lead holding identity ``value``, oldest first."""
    async with engine.connect() as conn:
        lead_id = (await conn.execute(select(Identity.lead_id).where(Identity.value == value))).scalar()
        if lead_id is None:
            return []
        rows = await conn.execute(select(Touchpoint.kind).where(Touchpoint.lead_id == lead_id)
                                  .order_by(Touchpoint.occurred_at, Touchpoint.id))
        return list(rows.scalars())


async def identities_of(engine, value: str) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        lead_id = (await conn.execute(select(Identity.lead_id).where(Identity.value == value))).scalar()
        rows = await conn.execute(select(Identity.kind, Identity.value).where(Identity.lead_id == lead_id))
        return {(k, v) for k, v in rows.all()}


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """How long ``check`` took to become true; fails after ``seconds``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"not within {seconds}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize("workers", [1, 4])
async def test_other_senders_are_handled_while_a_follower_s_user_info_takes_5_s(app_client, fake, backend, workers):
    fake.state.register_user("o_slow", unionid="u_slow")
    fake.state.set_delay("/cgi-bin/user/info", SLOW_S)
    client = await app_client(api_base_url=fake.base_url, inbox={"workers": workers})
    engine = client.server.app[ENGINE]
    now = int(time.time())

    started = time.monotonic()
    assert (await send_oa(client, oa_event("o_slow", "subscribe", "qrscene_expo2026", at=now))).status == 200
    others = [f"o_other_{i}" for i in range(5)]
    for i, openid in enumerate(others):
        assert (await send_oa(client, oa_text(openid, "你好", 70_000 + i, at=now))).status == 200
    # The follower's own next message: it must still come after the follow.
    assert (await send_oa(client, oa_text("o_slow", "在吗", 70_100, at=now))).status == 200

    async def others_recorded() -> bool:
        return all([await kinds_of(engine, o) == ["oa_message_text"] for o in others])

    took = await within(2.0, others_recorded)
    assert took < 2.0 and time.monotonic() - started < 2.0  # well before user/info answers (5 s)
    # The follower's message waits for the follow without holding a worker: later senders go straight on.
    late = [f"o_late_{i}" for i in range(3)]
    for i, openid in enumerate(late):
        assert (await send_oa(client, oa_text(openid, "在", 70_200 + i))).status == 200

    async def late_recorded() -> bool:
        return all([await kinds_of(engine, o) == ["oa_message_text"] for o in late])

    assert await within(1.0, late_recorded) < 1.0
    assert await kinds_of(engine, "o_slow") == []  # the follow waits for its lookup, holding nothing:
    if backend.is_production:  # its row is not locked while WeChat is asked (NOWAIT would raise)
        async with engine.begin() as conn:
            locked = await conn.execute(select(InboxEvent.id).where(InboxEvent.from_user == "o_slow")
                                        .with_for_update(nowait=True))
            assert len(locked.all()) == 2
    assert fake.state.count("/cgi-bin/user/info") == 1

    await wait_processed(engine, expected=10, timeout=15)
    assert time.monotonic() - started >= SLOW_S
    # The same end result as a lookup inside the transaction: the UnionID is on the follower's lead, and its
    # events are in their order.
    assert await identities_of(engine, "o_slow") == {("oa_openid", "o_slow"), ("unionid", "u_slow")}
    assert await kinds_of(engine, "o_slow") == ["oa_subscribe", "oa_message_text"]
    assert await count(engine, InboxEvent, InboxEvent.status == "done") == 10


async def test_a_follower_whose_unionid_is_known_joins_that_lead_after_the_slow_lookup(app_client, fake):
    """The UnionID arrives after the ack and still merges by the identity rules: one person, one lead."""
    fake.state.register_user("o_wang", unionid="u_wang")
    fake.state.register_external_contact("wm_wang", "王强", unionid="u_wang")
    fake.state.set_delay("/cgi-bin/user/info", 1.0)
    client = await app_client(api_base_url=fake.base_url, inbox={"workers": 1})
    engine = client.server.app[ENGINE]
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_wang"))
    await wait_processed(engine, expected=1)
    await send_oa(client, oa_event("o_wang", "subscribe"))
    await wait_processed(engine, expected=2)
    assert await identities_of(engine, "o_wang") == {
        ("oa_openid", "o_wang"), ("unionid", "u_wang"), ("wecom_external", "wm_wang")}
    assert sorted(await kinds_of(engine, "o_wang")) == ["oa_subscribe", "wecom_add_contact"]


async def test_a_slow_wecom_contact_lookup_holds_up_nobody_else(app_client, fake):
    fake.state.register_external_contact("wm_slow", "赵敏", unionid="u_zhao")
    fake.state.set_delay("/cgi-bin/externalcontact/get", 3.0)
    client = await app_client(api_base_url=fake.base_url, inbox={"workers": 1})
    engine = client.server.app[ENGINE]
    started = time.monotonic()
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_slow"))
    await send_oa(client, oa_text("o_quick", "你好", 71_000))

    async def quick_recorded() -> bool:
        return await kinds_of(engine, "o_quick") == ["oa_message_text"]

    await within(1.5, quick_recorded)
    assert await kinds_of(engine, "wm_slow") == []
    await wait_processed(engine, expected=2, timeout=15)
    assert time.monotonic() - started >= 3.0
    assert await identities_of(engine, "wm_slow") == {("wecom_external", "wm_slow"), ("unionid", "u_zhao")}


# -- the task set itself ---------------------------------------------------------------------------------
async def test_lookups_are_tracked_deduplicated_bounded_and_failures_recorded() -> None:
    from bot.inbox.lookups import Lookups

    gate = asyncio.Event()
    prepared: list[int] = []
    handled: list[tuple[int, dict]] = []
    failed: list[int] = []

    async def prepare(inbox_id: int) -> dict | None:
        prepared.append(inbox_id)
        if inbox_id == 13:
            raise RuntimeError("a bug in a prepare handler")
        await gate.wait()
        return None if inbox_id == 12 else {"unionid": f"u{inbox_id}"}

    statuses = iter(["retry", "wait", "done"])

    async def handle(inbox_id: int, data: dict) -> str:
        handled.append((inbox_id, dict(data)))
        return next(statuses)

    async def fail(inbox_id: int, exc: BaseException) -> None:
        failed.append(inbox_id)

    lookups = Lookups(prepare, handle, fail, done="done", again=("retry", "wait"), max_running=3)
    lookups.start(11)
    lookups.start(11)  # in hand already
    lookups.start(12)
    lookups.start(13)
    lookups.start(14)  # a fourth: left to the sweep
    await asyncio.sleep(0.05)
    assert prepared == [11, 12, 13] and failed == [13]
    assert lookups.running == 2
    gate.set()
    await lookups.stop(5.0)
    # 11: retried through a conflict and a wait, then done; 12: no longer pending, not handled.
    assert handled == [(11, {"unionid": "u11"})] * 3
    assert lookups.running == 0


async def test_the_sender_s_next_events_follow_in_order_until_one_is_not_done() -> None:
    from bot.inbox.lookups import Lookups

    gate = asyncio.Event()
    calls: list[tuple[int, object]] = []
    outcome = {1: "done", 2: "done", 3: "done", 4: "deferred", 5: "done"}

    async def prepare(inbox_id: int) -> dict | None:
        await gate.wait()
        return {"unionid": "u"}

    async def handle(inbox_id: int, data: object) -> str:
        calls.append((inbox_id, data))
        return outcome[inbox_id]

    async def fail(inbox_id: int, exc: BaseException) -> None:
        raise AssertionError(exc)

    lookups = Lookups(prepare, handle, fail, done="done", again=("retry", "wait"))
    lookups.start(1, [2])
    assert lookups.follow(1, 3) and lookups.follow(1, 4) and lookups.follow(1, 5)
    lookups.start(1, [3])  # the sweep brought it back: nothing twice
    assert not lookups.follow(9, 10)  # not in its lookups: the caller keeps the row
    gate.set()
    await lookups.stop(5.0)
    # 4 needs lookups of its own (handed on), so 5, behind it, is left for the sweep.
    assert calls == [(1, {"unionid": "u"}), (2, None), (3, None), (4, None)]
    assert not lookups.follow(1, 6)  # finished: no longer taking followers


async def test_stop_cancels_lookups_that_outlast_the_drain() -> None:
    from bot.inbox.lookups import Lookups

    forever = asyncio.Event()

    async def prepare(inbox_id: int) -> dict | None:
        await forever.wait()
        return {}

    async def handle(inbox_id: int, data: dict) -> str:
        raise AssertionError("never reached")

    async def fail(inbox_id: int, exc: BaseException) -> None:
        raise AssertionError("a cancellation is not a failure")

    lookups = Lookups(prepare, handle, fail, done="done", again=())
    lookups.start(1)
    await asyncio.sleep(0)
    started = time.monotonic()
    await lookups.stop(0.1)
    assert time.monotonic() - started < 1 and lookups.running == 0
