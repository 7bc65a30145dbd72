"""Accept and return in the database (storage/repos/handoff_decisions.py), on both backends: the stage machinery,
the assignment, the timeline's events, the published domain events, the refusals, the returned touchpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.scoring import default_scoring
from leads.events import LeadAccepted, LeadReturned, StageChanged
from leads.handoff import DecisionRefused
from leads.identity import IdentityKey
from leads.lifecycle import transition
from leads.scoring import ScoreModel
from leads.scoring_rules import MotivationRule
from storage.db import session_factory
from storage.models import Assignment, AssignmentEvent, Lead, LeadScore, StageTransition, Touchpoint, User
from storage.repos.assignments import assign_lead
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.handoff_decisions import accept_lead, return_lead, transferring_sdr
from storage.repos.leads import LeadRepository
from storage.repos.stages import change_stages
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 2, 5, tzinfo=UTC)
REASONS = ("预算不足", "非决策人", "需求不匹配", "联系不上", "重复")


async def _world(engine: AsyncEngine) -> dict[str, int]:
    """An SDR who transferred a lead to sales, the lead routed to zhang (华东); li is in 华东 too, wang leads 华南."""
    ids: dict[str, int] = {}
    async with session_factory(engine)() as s, s.begin():
        for name, role, wecom in (("sdr1", "sdr", "SdrOne"), ("zhang", "sales", "ZhangSan"), ("li", "sales", None),
                                  ("boss", "team_lead", None), ("wang", "team_lead", None), ("mgr", "manager", None)):
            ids[name] = (await add_user(s, username=name, role=role, password_hash="x", wecom_userid=wecom)).id
        east, south = await add_team(s, "华东"), await add_team(s, "华南")
        for team, name in ((east, "zhang"), (east, "li"), (east, "boss"), (south, "wang")):
            await set_member(s, team.id, ids[name])
        lead = await LeadRepository(s).resolve([IdentityKey("oa_openid", "wx", "o-1")], now=NOW, inbox_id=None,
                                                display_name="王小明")
        tx = EventTx(s, NO_SUBSCRIBERS)
        mql = transition("lead", "mql", "sdr", "BANT 已确认", "sdr1")
        await change_stages(tx, [StageChanged.of(lead.id, mql, NOW)])
        row = await assign_lead(tx, lead.id, ids["zhang"], rule="routing.rules[0]", reason="华东制造业", at=NOW,
                                team_id=east.id)
        ids["lead"], ids["assignment"], ids["east"] = lead.id, row.id, east.id
    return ids


def _listening(heard: list[Any]) -> Any:
    async def note(tx: EventTx, events: Sequence[Any]) -> None:
        heard.extend(events)

    return NO_SUBSCRIBERS.subscribe(LeadAccepted, note).subscribe(LeadReturned, note)


async def _accept(engine: AsyncEngine, lead_id: int, user_id: int, heard: list[Any] | None = None) -> Any:
    async with session_factory(engine)() as s, s.begin():
        user = await s.get(User, user_id)
        return await accept_lead(EventTx(s, _listening(heard if heard is not None else [])), lead_id, user, at=LATER)


async def _return(engine: AsyncEngine, lead_id: int, user_id: int, reason: str = "预算不足", text: str = "明年再说",
                  heard: list[Any] | None = None, scoring: ScoreModel | None = None) -> Any:
    async with session_factory(engine)() as s, s.begin():
        user = await s.get(User, user_id)
        return await return_lead(EventTx(s, _listening(heard if heard is not None else [])), lead_id, user,
                                 reason=reason, text=text, reasons=REASONS, at=LATER, scoring=scoring)


async def _refused(call: Any) -> DecisionRefused:
    with pytest.raises(DecisionRefused) as refused:
        await call
    return refused.value


async def test_accept_moves_to_sal_keeps_the_owner_and_publishes(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    heard: list[Any] = []
    row = await _accept(engine, ids["lead"], ids["zhang"], heard)
    assert (row.status, row.decided_by_user_id, row.decided_at) == ("accepted", ids["zhang"], LATER)
    assert heard == [LeadAccepted(ids["lead"], ids["assignment"], ids["zhang"], LATER)]
    async with session_factory(engine)() as s:
        lead = await s.get(Lead, ids["lead"])
        assert (lead.stage, lead.owner_user_id) == ("sal", ids["zhang"])
        last = (await s.execute(select(StageTransition).order_by(StageTransition.id.desc()).limit(1))).scalar_one()
        assert (last.from_stage, last.to_stage, last.actor, last.actor_id) == ("mql", "sal", "sales", "zhang")
        kinds = (await s.execute(select(AssignmentEvent.kind).order_by(AssignmentEvent.id))).scalars().all()
        assert kinds == ["assigned", "accepted"]


async def test_accepting_twice_is_409_already_accepted_and_changes_nothing(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    await _accept(engine, ids["lead"], ids["zhang"])
    again = await _refused(_accept(engine, ids["lead"], ids["zhang"]))
    assert (again.status, again.message) == (409, "已接受")
    other = await _refused(_accept(engine, ids["lead"], ids["mgr"]))  # decided by someone else: not "已接受"
    assert (other.status, other.code) == (409, "not_pending")
    async with session_factory(engine)() as s:
        assert len((await s.execute(select(StageTransition).where(StageTransition.to_stage == "sal"))).all()) == 1


async def test_who_may_decide(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    for outsider in ("li", "wang", "sdr1"):  # another salesperson, another team's lead, an SDR
        refused = await _refused(_accept(engine, ids["lead"], ids[outsider]))
        assert refused.status == 403, outsider
    assert (await _refused(_accept(engine, 999_999, ids["zhang"]))).status == 404
    row = await _accept(engine, ids["lead"], ids["boss"])  # the assignee's team lead, for them
    assert (row.status, row.user_id, row.decided_by_user_id) == ("accepted", ids["zhang"], ids["boss"])


async def test_return_goes_back_to_the_sdr_queue_with_the_reason(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    heard: list[Any] = []
    row = await _return(engine, ids["lead"], ids["zhang"], "预算不足", "  明年再说 ", heard)
    assert (row.status, row.return_reason, row.return_text) == ("returned", "预算不足", "明年再说")
    assert heard == [LeadReturned(ids["lead"], ids["assignment"], ids["zhang"], "预算不足", "明年再说", LATER)]
    async with session_factory(engine)() as s:
        lead = await s.get(Lead, ids["lead"])
        assert (lead.stage, lead.owner_user_id) == ("returned", None)
        touch = (await s.execute(select(Touchpoint).where(Touchpoint.kind == "handoff_returned"))).scalar_one()
        assert touch.detail == {"reason": "预算不足", "assignment_id": ids["assignment"]}
        event = (await s.execute(select(AssignmentEvent).where(AssignmentEvent.kind == "returned"))).scalar_one()
        assert event.detail["reason"] == "预算不足" and "明年再说" not in str(event.detail)  # no free text
    assert (await _refused(_return(engine, ids["lead"], ids["zhang"]))).status == 409
    assert await transferring_sdr_of(engine, ids["lead"]) == (ids["sdr1"], "SdrOne")


async def transferring_sdr_of(engine: AsyncEngine, lead_id: int) -> Any:
    async with session_factory(engine)() as s:
        return await transferring_sdr(s, lead_id)


@pytest.mark.parametrize(("reason", "text", "code"), [("太贵", "", "bad_reason"), ("重复", "x" * 501, "bad_text"),
                                                      ("重复", "a\x07b", "bad_text")])
async def test_a_bad_return_is_400_and_changes_nothing(engine: AsyncEngine, reason: str, text: str,
                                                       code: str) -> None:
    ids = await _world(engine)
    refused = await _refused(_return(engine, ids["lead"], ids["zhang"], reason, text))
    assert (refused.status, refused.code) == (400, code)
    async with session_factory(engine)() as s:
        assert (await s.get(Lead, ids["lead"])).stage == "mql"
        assert (await s.get(Assignment, ids["assignment"])).status == "pending"


async def test_a_configured_rule_scores_the_return(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    rules = default_scoring().rules
    rules = dataclasses.replace(rules, motivation=(*rules.motivation,
                                                    MotivationRule("returned", "handoff_returned", 25)))
    await _return(engine, ids["lead"], ids["zhang"], scoring=ScoreModel(rules))
    async with session_factory(engine)() as s:
        score = await s.get(LeadScore, ids["lead"])
        assert score is not None and score.motivation == pytest.approx(25, abs=0.5)


async def test_a_stale_assignment_id_is_refused_under_the_lock_and_changes_nothing(engine: AsyncEngine) -> None:
    """The card of assignment #1 read before the SLA reassigned the lead (#2, to li): boss, lead of both, may
    decide for li, but a decision naming #1 must not accept or return #2."""
    ids = await _world(engine)
    async with session_factory(engine)() as s, s.begin():
        new = await assign_lead(EventTx(s, NO_SUBSCRIBERS), ids["lead"], ids["li"], rule="sla", reason="超时改派",
                                at=LATER, team_id=ids["east"])
    assert new.id != ids["assignment"]
    async with session_factory(engine)() as s, s.begin():
        boss = await s.get(User, ids["boss"])
        tx = EventTx(s, NO_SUBSCRIBERS)
        accepted = await _refused(accept_lead(tx, ids["lead"], boss, at=LATER, assignment_id=ids["assignment"]))
        returned = await _refused(return_lead(tx, ids["lead"], boss, reason="重复", text="", reasons=REASONS,
                                              at=LATER, assignment_id=ids["assignment"]))
    for refused in (accepted, returned):
        assert (refused.status, refused.code, refused.message) == (409, "not_pending", "该卡片已过期：线索已改派")
    async with session_factory(engine)() as s:
        assert (await s.get(Lead, ids["lead"])).stage == "mql"
        assert (await s.get(Assignment, new.id)).status == "pending"
    row = await _accept(engine, ids["lead"], ids["boss"])  # without an assignment id: whatever is pending (the API)
    assert (row.id, row.status) == (new.id, "accepted")


async def test_the_current_assignment_id_decides(engine: AsyncEngine) -> None:
    ids = await _world(engine)
    async with session_factory(engine)() as s, s.begin():
        zhang = await s.get(User, ids["zhang"])
        row = await accept_lead(EventTx(s, NO_SUBSCRIBERS), ids["lead"], zhang, at=LATER,
                                assignment_id=ids["assignment"])
    assert (row.id, row.status) == (ids["assignment"], "accepted")


async def _handed_over_by(engine: AsyncEngine, actor_id: str) -> int:
    """A lead an SDR move made an MQL, the move recording ``actor_id``."""
    async with session_factory(engine)() as s, s.begin():
        lead = await LeadRepository(s).resolve([IdentityKey("oa_openid", "wx", f"o-{actor_id}")], now=NOW,
                                                inbox_id=None)
        move = transition("lead", "mql", "sdr", "BANT 已确认", actor_id)
        await change_stages(EventTx(s, NO_SUBSCRIBERS), [StageChanged.of(lead.id, move, NOW)])
        return lead.id


async def test_the_transferring_sdr_by_an_all_digit_username_is_not_the_user_with_that_id(
        engine: AsyncEngine) -> None:
    ids = await _world(engine)
    digits = str(ids["zhang"])  # an SDR whose username is zhang's id
    async with session_factory(engine)() as s, s.begin():
        sdr = await add_user(s, username=digits, role="sdr", password_hash="x", wecom_userid="SdrDigits")
    # The console records the username: the SDR it names, never zhang.
    by_username = await _handed_over_by(engine, digits)
    assert await transferring_sdr_of(engine, by_username) == (sdr.id, "SdrDigits")
    # The demo data records a user id no username has: still found.
    assert await transferring_sdr_of(engine, await _handed_over_by(engine, str(ids["sdr1"]))) == (
        ids["sdr1"], "SdrOne")
    async with session_factory(engine)() as s, s.begin():
        (await s.get(User, sdr.id)).disabled_at = NOW
    # A disabled SDR's username is no reason to fall back to the user with that id.
    assert await transferring_sdr_of(engine, by_username) is None
