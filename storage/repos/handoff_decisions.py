"""Sales' answer to a routed MQL in the database: accept (→ SAL) or return (→ returned, back to the SDR queue).

One function per answer, called by the JSON API, the card click handler and (through the API) the mobile pages,
so the rules are the same everywhere: authorisation as the console's (leads.access LEAD_ACCEPT: the assignee,
a team lead for their team, managers and admins), the pending assignment locked, the stage moved through
storage/repos/stages.py (StageChanged and the stage_transitions row), an assignment event for the timeline, and
LeadAccepted / LeadReturned published in the caller's transaction (the CRM webhook and the SDR's notice are
their subscribers' business). Refusals are leads.handoff.DecisionRefused and change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from leads import access
from leads.events import LeadAccepted, LeadReturned, StageChanged
from leads.handoff import (
    NOT_PENDING,
    DecisionRefused,
    already_accepted,
    check_return,
    forbidden,
    not_found,
    not_pending,
)
from leads.lifecycle import MQL, RETURNED, SAL, SALES, SDR, TransitionRefused, transition
from leads.scoring import ScoreEvent, ScoreModel
from storage.models import Assignment, Lead, StageTransition, Touchpoint, User
from storage.repos.assignments import (
    AssignmentRow,
    add_assignment_event,
    assignment_by_id,
    lock_leads,
    pending_assignment,
)
from storage.repos.events import EventTx
from storage.repos.scores import LeadScorer
from storage.repos.stages import change_stages
from storage.repos.teams import share_a_team

RETURN_TOUCHPOINT = "handoff_returned"  # a touchpoint kind scoring rules may weigh ([[scoring.motivation]] event)
RETURN_CHANNEL, RETURN_SCENE = "sales", "handoff"
STALE_CARD = "该卡片已过期：线索已改派"

_leads = Lead.__table__
_assignments = Assignment.__table__


class Decider(Protocol):
    """Who answers: a storage.models.User (the console's, the card's sender, the mobile page's)."""

    id: int
    role: str
    username: str  # the stage change's actor_id, as the console's own moves record it


async def accept_lead(tx: EventTx, lead_id: int, actor: Decider, *, at: datetime,
                      assignment_id: int | None = None) -> AssignmentRow:
    """Accept the lead's pending assignment: stage SAL, the assignment accepted, the owner unchanged.

    The same person accepting again gets 409 "已接受" (the card handler treats that as done). With
    ``assignment_id`` (a card's), only that assignment may be accepted: 409 when the lead was reassigned since."""
    stage, pending = await _decidable(tx, lead_id, actor, accepting=True, expected=assignment_id)
    await _decide(tx, pending.id, "accepted", actor.id, at)
    if stage != SAL:
        await _move(tx, lead_id, stage, SAL, "销售接受线索", actor.username, at)
    await add_assignment_event(tx.db, pending.id, lead_id, "accepted", at=at, actor_user_id=actor.id,
                               detail={"assignee_user_id": pending.user_id})
    await tx.publish([LeadAccepted(lead_id, pending.id, actor.id, at)])
    return await _reload(tx, pending.id)


async def return_lead(tx: EventTx, lead_id: int, actor: Decider, *, reason: str, text: str,
                      reasons: tuple[str, ...], at: datetime, scoring: ScoreModel | None = None,
                      assignment_id: int | None = None) -> AssignmentRow:
    """Return the lead: stage "returned", reason and text kept on the assignment, the owner cleared (back to
    the SDR queue), and a ``handoff_returned`` touchpoint (scored when ``scoring`` has a rule for it and the
    transaction is an ORM session). ``assignment_id`` as for accept_lead."""
    stage, pending = await _decidable(tx, lead_id, actor, accepting=False, reasons=(reason, text, reasons),
                                      expected=assignment_id)
    reason, text = check_return(reason, text, reasons)
    await _decide(tx, pending.id, "returned", actor.id, at, return_reason=reason, return_text=text)
    await tx.db.execute(update(_leads).where(_leads.c.id == lead_id).values(owner_user_id=None))
    _sync_lead(tx, lead_id, owner_user_id=None)
    if stage != RETURNED:
        await _move(tx, lead_id, stage, RETURNED, f"销售退回：{reason}", actor.username, at)
    await _return_touchpoint(tx, lead_id, pending.id, reason, at, scoring)
    await add_assignment_event(tx.db, pending.id, lead_id, "returned", at=at, actor_user_id=actor.id,
                               detail={"reason": reason, "assignee_user_id": pending.user_id})
    await tx.publish([LeadReturned(lead_id, pending.id, actor.id, reason, text, at)])
    return await _reload(tx, pending.id)


async def _decidable(tx: EventTx, lead_id: int, actor: Decider, *, accepting: bool,
                     reasons: tuple[str, str, tuple[str, ...]] | None = None,
                     expected: int | None = None) -> tuple[str, AssignmentRow]:
    """The lead's stage and its locked pending assignment, or the refusal: 404, 403, 400 (a return's reason,
    checked once the actor may act), 409 (also when ``expected`` is not the pending assignment: checked under
    the lock, so a card read before a reassignment never decides the new one)."""
    await lock_leads(tx.db, [lead_id])  # as routing does: an assignment and a decision never interleave
    lead = (await tx.db.execute(select(_leads.c.stage, _leads.c.owner_user_id, _leads.c.merged_into_id,
                                       _leads.c.erased_at).where(_leads.c.id == lead_id))).first()
    if lead is None or lead.merged_into_id is not None or lead.erased_at is not None:
        raise not_found()
    pending = await pending_assignment(tx.db, lead_id, lock=True)
    latest = pending or await _latest(tx, lead_id)
    assignee = latest.user_id if latest is not None else lead.owner_user_id
    await _authorize(tx, actor, assignee)
    if reasons is not None:
        check_return(*reasons)
    if pending is None:
        if accepting and latest is not None and latest.status == "accepted" and latest.decided_by_user_id == actor.id:
            raise already_accepted()
        raise not_pending(latest.status if latest is not None else None)
    if expected is not None and pending.id != expected:
        raise DecisionRefused(409, NOT_PENDING, STALE_CARD)
    return lead.stage, pending


async def _authorize(tx: EventTx, actor: Decider, assignee: int | None) -> None:
    owns = assignee is not None and assignee == actor.id
    same_team = (not owns and assignee is not None and access.scope(actor.role, access.LEAD_ACCEPT) is access.TEAM
                 and await share_a_team(tx.db, actor.id, assignee))  # type: ignore[arg-type]  # Core works too
    if not access.allowed(actor.role, access.LEAD_ACCEPT, owns=owns, same_team=same_team):
        raise forbidden()


async def _latest(tx: EventTx, lead_id: int) -> AssignmentRow | None:
    newest = (await tx.db.execute(select(_assignments.c.id).where(_assignments.c.lead_id == lead_id)
                                  .order_by(_assignments.c.id.desc()).limit(1))).scalar_one_or_none()
    return None if newest is None else await assignment_by_id(tx.db, newest)


async def _reload(tx: EventTx, assignment_id: int) -> AssignmentRow:
    row = await assignment_by_id(tx.db, assignment_id)
    assert row is not None  # written in this transaction
    return row


async def _decide(tx: EventTx, assignment_id: int, status: str, user_id: int, at: datetime, **values: str) -> None:
    await tx.db.execute(update(_assignments).where(_assignments.c.id == assignment_id)
                        .values(status=status, decided_at=at, decided_by_user_id=user_id, **values))


async def _move(tx: EventTx, lead_id: int, stage: str, to: str, reason: str, username: str, at: datetime) -> None:
    try:
        move = transition(stage, to, SALES, reason, username)
    except TransitionRefused as refused:  # a lead moved by hand meanwhile (disqualified, unsubscribed)
        raise DecisionRefused(409, "stage_refused", str(refused)) from refused
    await change_stages(tx, [StageChanged.of(lead_id, move, at)])


def _sync_lead(tx: EventTx, lead_id: int, **values: object) -> None:
    """A Core update went around the ORM: a Lead the session holds learns the value without a reload."""
    if isinstance(tx.db, AsyncSession):
        lead = tx.db.identity_map.get(Session.identity_key(Lead, lead_id))
        if lead is not None:
            for key, value in values.items():
                set_committed_value(lead, key, value)


async def _return_touchpoint(tx: EventTx, lead_id: int, assignment_id: int, reason: str, at: datetime,
                             scoring: ScoreModel | None) -> None:
    detail = {"reason": reason, "assignment_id": assignment_id}
    stmt = (Touchpoint.__table__.insert()
            .values(lead_id=lead_id, kind=RETURN_TOUCHPOINT, scene=RETURN_SCENE, channel=RETURN_CHANNEL,
                    source_code=None, occurred_at=at, inbox_id=None, detail=detail)
            .returning(Touchpoint.__table__.c.id))
    touchpoint_id = (await tx.db.execute(stmt)).scalar_one()
    if scoring is None or RETURN_TOUCHPOINT not in scoring.scored_kinds or not isinstance(tx.db, AsyncSession):
        return
    lead = await tx.db.get(Lead, lead_id)
    assert lead is not None
    scorer = LeadScorer(tx.db, scoring, lambda: at, tx.events)
    await scorer.touchpoint(lead, ScoreEvent(touchpoint_id, RETURN_TOUCHPOINT, at, RETURN_CHANNEL, RETURN_SCENE,
                                             detail))


async def transferring_sdr(db: AsyncSession | AsyncConnection, lead_id: int) -> tuple[int, str | None] | None:
    """The SDR who last handed the lead to sales (the actor of its latest move into MQL by an SDR) and their
    WeCom userid; None when scoring, not a person, made it an MQL (or the actor is no enabled user)."""
    actor_id = (await db.execute(
        select(StageTransition.actor_id)
        .where(StageTransition.lead_id == lead_id, StageTransition.to_stage == MQL, StageTransition.actor == SDR)
        .order_by(StageTransition.id.desc()).limit(1))).scalar_one_or_none()
    if not actor_id:
        return None
    # The console records the SDR's username (Actor.label); the demo data a user id. A username may be all
    # digits ("007"), so an existing username wins and only an actor_id no username has is read as an id.
    columns = (User.id, User.wecom_userid, User.disabled_at)
    row = (await db.execute(select(*columns).where(User.username == actor_id))).first()
    if row is None and actor_id.isascii() and actor_id.isdigit() and len(actor_id) <= 18:
        row = (await db.execute(select(*columns).where(User.id == int(actor_id)))).first()
    return None if row is None or row.disabled_at is not None else (row.id, row.wecom_userid)
