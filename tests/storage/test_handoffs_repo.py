"""storage/repos/handoffs.py: the queue with lead names and claimers, scoping, counts, claim, close, reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import session_factory
from storage.models import Handoff, Identity, Lead, OutboxMessage, User
from storage.repos import handoffs as repo

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)


async def seed(engine) -> dict[str, int]:
    async with session_factory(engine)() as session, session.begin():
        chen = User(username="chen", display_name="陈静", role="sdr", password_hash="x", wecom_userid="sales_chen")
        wang = User(username="wang", display_name="", role="sales", password_hash="x")
        session.add_all([chen, wang])
        await session.flush()
        mine = Lead(display_name="张伟", stage="mql", owner_user_id=wang.id, oa_last_interaction_at=NOW,
                    profile={"wecom_owner": "sales_chen"})
        other = Lead(display_name=None, stage="lead", profile={})
        session.add_all([mine, other])
        await session.flush()
        session.add_all([Identity(lead_id=mine.id, kind="oa_openid", app="wx", value="o-zw"),
                         Identity(lead_id=mine.id, kind="wecom_external", app="corp", value="wm-zw"),
                         Identity(lead_id=other.id, kind="phone", app="", value="+8613800000000")])
        for lead_id, text, at in ((mine.id, "甲", NOW), (other.id, "乙", NOW - timedelta(hours=1))):
            await repo.open_handoff(session, lead_id=lead_id, inbox_id=None, reason="no_intent", message=text, at=at)
        return {"chen": chen.id, "wang": wang.id, "mine": mine.id, "other": other.id}


async def test_listing_scoping_and_counts(engine) -> None:
    ids = await seed(engine)
    async with session_factory(engine)() as session:
        views = await repo.list_handoffs(session, "open", 50, 0)
        assert [(v.handoff.message, v.lead_name) for v in views] == [("乙", None), ("甲", "张伟")]  # oldest first
        own = await repo.list_handoffs(session, "open", 50, 0, owner_ids=[ids["wang"]])
        assert [v.handoff.message for v in own] == ["甲"] and own[0].lead_owner_id == ids["wang"]
        assert await repo.count_handoffs(session, "open") == 2
        assert await repo.count_handoffs(session, "open", owner_ids=[ids["chen"]]) == 0
        assert await repo.list_handoffs(session, "closed", 50, 0) == []


async def test_claim_and_close_with_reply(engine) -> None:
    ids = await seed(engine)
    async with session_factory(engine)() as session, session.begin():
        [first, second] = await repo.list_handoffs(session, "open", 50, 0)
        repo.claim(second.handoff, ids["wang"], NOW)
        row = OutboxMessage(idempotency_key="k", target="oa", method="oa.custom_text", payload={}, status="sandboxed")
        session.add(row)
        await session.flush()
        outbox_id = row.id
        await repo.close_with_reply(session, first.handoff, user_id=ids["chen"], outbox_id=outbox_id, now=NOW)
    async with session_factory(engine)() as session:
        mine = await repo.list_handoffs(session, "open", 50, 0, claimed_by=ids["wang"])
        assert [(v.handoff.message, v.claimed_by) for v in mine] == [("甲", "wang")]  # no display name: username
        [closed] = await repo.list_handoffs(session, "closed", 50, 0)
        h: Handoff = closed.handoff
        assert (closed.closed_by, closed.claimed_by, h.closed_at, h.reply_outbox_id) == ("陈静", "陈静", NOW, outbox_id)
        assert (await session.get(OutboxMessage, outbox_id)).author_user_id == ids["chen"]
        assert await repo.outbox_status(session, outbox_id) == "sandboxed"
        assert (await repo.handoff_view(session, h.id)).handoff.status == "closed"
        assert await repo.handoff_view(session, 999_999) is None


async def test_reach_names_the_channels_and_the_owning_member(engine) -> None:
    ids = await seed(engine)
    async with session_factory(engine)() as session:
        reach = await repo.reach_of(session, ids["mine"])
        assert (reach.openid, reach.external_userid, reach.wecom_owner, reach.oa_last_interaction_at) == (
            "o-zw", "wm-zw", "sales_chen", NOW)
        nobody = await repo.reach_of(session, ids["other"])
        assert (nobody.openid, nobody.external_userid, nobody.wecom_owner) == (None, None, None)
        assert await repo.member_label(session, "sales_chen") == "陈静（sales_chen）"
        assert await repo.member_label(session, "unknown_member") == "unknown_member"
        assert await repo.user_label(session, ids["wang"]) == "wang" and await repo.user_label(session, None) is None
