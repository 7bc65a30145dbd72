"""Plain activities (leads/activity.py) in the database: one through the lead repository, or a whole batch
with a handful of multi-row statements that leave what the repository would have left, event by event.

A batch costs one statement to find and lock every sender's lead with its score row, one multi-row insert of
the touchpoints, one update of the leads and one of the score rows, whatever its size; the repository takes
about six per event and the ORM's bookkeeping around each. The batch takes only what it can record exactly as
the repository would: a sender known (or new: storage/repos/new_leads.py creates their leads first), on a
live lead with a score row built by these rules, the only event of its lead in the batch, at most one scored
touch, not older than the lead's last scored one. Whatever it leaves, it leaves untouched, for the event's own
handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leads.activity import Activity
from leads.events import DomainEvent, DomainEvents
from leads.lifecycle import MERGED
from leads.scoring import MotivationState, ScoreEvent, ScoreModel
from leads.touch_events import score_events, touchpoint_events
from storage.models import Identity, Lead, LeadScore, Touchpoint
from storage.repos.events import EventTx
from storage.repos.handoffs import open_handoffs
from storage.repos.leads import LeadRepository
from storage.repos.new_leads import create_leads
from storage.repos.scores import scored_events

_i, _l, _s, _t = Identity.__table__, Lead.__table__, LeadScore.__table__, Touchpoint.__table__

_OWNERS = (
    select(_i.c.kind, _i.c.app, _i.c.value, _l.c.id, _l.c.stage, _l.c.profile, _l.c.last_activity_at,
           _l.c.oa_last_interaction_at, _l.c.erased_at, _l.c.merged_into_id,
           _s.c.rules, _s.c.state, _s.c.quadrant, _s.c.motivation)
    .select_from(_i.join(_l, _l.c.id == _i.c.lead_id).outerjoin(_s, _s.c.lead_id == _l.c.id))
    .where(tuple_(_i.c.kind, _i.c.app, _i.c.value).in_(bindparam("refs", expanding=True)))
    .order_by(_l.c.id)  # locks taken in ascending order, as LeadRepository.lock takes them
)
_LOCKED_OWNERS = _OWNERS.with_for_update(of=_l)
_INSERTS = {dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_t).on_conflict_do_nothing()
            .returning(_t.c.id, _t.c.inbox_id, _t.c.kind) for dialect in (postgresql, sqlite)}
_SET_ACTIVITY = update(_l).where(_l.c.id == bindparam("b_id")).values(
    last_activity_at=bindparam("b_activity"), oa_last_interaction_at=bindparam("b_oa"))
# The lead row's copy of its scores (migration 0009's trigger keeps it) written with its activity: the trigger on
# the score row then finds nothing to change, and the lead gets one new row version per event instead of two.
_SET_ACTIVITY_AND_COPY = _SET_ACTIVITY.values(
    quadrant=bindparam("b_quadrant"), ability=bindparam("b_ability"), motivation=bindparam("b_motivation"))
_SET_SCORES = update(_s).where(_s.c.lead_id == bindparam("b_lead")).values(
    ability=bindparam("b_ability"), motivation=bindparam("b_motivation"), quadrant=bindparam("b_quadrant"),
    state=bindparam("b_state"), scored_at=bindparam("b_at"))


async def record_activity(leads: LeadRepository, activity: Activity, inbox_id: int | None) -> Lead:
    """One event's activity, as its handler records it: the lead it belongs to, then its touches in order."""
    lead = await leads.resolve([activity.identity], now=activity.occurred_at, inbox_id=inbox_id)
    if activity.oa_interaction:
        await leads.note_oa_interaction(lead, activity.occurred_at)
    for touch in activity.touches:
        await leads.add_touchpoint(lead, kind=touch.kind, source=touch.source, occurred_at=activity.occurred_at,
                                   inbox_id=inbox_id, detail=dict(touch.detail))
    if activity.handoff is not None:
        await open_handoffs(leads.session, [_handoff_row(lead.id, inbox_id, activity)])
    return lead


def _handoff_row(lead_id: int, inbox_id: int | None, activity: Activity) -> dict[str, Any]:
    handoff = activity.handoff
    assert handoff is not None
    return {"lead_id": lead_id, "inbox_id": inbox_id, "reason": handoff.reason, "message": handoff.message,
            "created_at": activity.occurred_at}


@dataclass(slots=True)
class _Taken:
    inbox_id: int
    activity: Activity
    owner: Any  # its row of _OWNERS


class ActivityBatch:
    def __init__(self, session: AsyncSession, model: ScoreModel, events: DomainEvents[EventTx],
                 clock: Callable[[], datetime]) -> None:
        self._session = session
        self._model = model
        self._events = events
        self._clock = clock
        self._dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    async def record(self, items: Sequence[tuple[int, Activity]]) -> list[int]:
        """Record what it can of these (inbox id, activity) pairs, in one go; the inbox ids it recorded.

        Each pair must be its sender's first event in the batch: a sender's later events go to their handlers
        after this, so they follow it."""
        if not items:
            return []
        owners = await self._owners([a.identity.ref for _, a in items])
        new = {a.identity.ref: (a.identity, a.occurred_at) for _, a in items if a.identity.ref not in owners}
        if new:  # their first quadrant is heard before anything they did (as resolve, then the touches)
            await create_leads(self._session, self._model, self._events, self._clock, list(new.values()))
            owners |= await self._owners(list(new))
        taken, leads = [], set()
        for inbox_id, activity in items:
            owner = owners.get(activity.identity.ref)
            if owner is not None and owner.id not in leads and self._plain(owner, activity):
                leads.add(owner.id)
                taken.append(_Taken(inbox_id, activity, owner))
        if not taken:
            return []
        ids = {(r.inbox_id, r.kind): r.id for r in await self._session.execute(_INSERTS[self._dialect], [
            {"lead_id": t.owner.id, "kind": touch.kind, "scene": touch.source.scene, "channel": touch.source.channel,
             "source_code": touch.source.code, "occurred_at": t.activity.occurred_at, "inbox_id": t.inbox_id,
             "detail": dict(touch.detail)} for t in taken for touch in t.activity.touches])}
        score_rows: list[dict[str, Any]] = []
        heard: list[DomainEvent] = []
        for t in taken:
            heard += await self._score(t, ids, score_rows)
        scored = {row["b_lead"]: row for row in score_rows}  # one event per lead here: one score row at most
        plain_rows, copy_rows = [], []
        for t in taken:
            if (score := scored.get(t.owner.id)) is not None:
                copy_rows.append({**self._activity_row(t), "b_quadrant": score["b_quadrant"],
                                  "b_ability": score["b_ability"], "b_motivation": score["b_motivation"]})
            elif (row := self._activity_row(t)) != self._unchanged(t):
                plain_rows.append(row)
        if plain_rows:
            await self._session.execute(_SET_ACTIVITY, plain_rows)
        if copy_rows:
            await self._session.execute(_SET_ACTIVITY_AND_COPY, copy_rows)
        if score_rows:
            await self._session.execute(_SET_SCORES, score_rows)
        if handoffs := [_handoff_row(t.owner.id, t.inbox_id, t.activity) for t in taken if t.activity.handoff]:
            await open_handoffs(self._session, handoffs)
        if heard:  # after the writes, as each event's subscribers would find them; one lead per event here
            await EventTx(self._session, self._events).publish(heard)
        return [t.inbox_id for t in taken]

    async def _owners(self, refs: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Any]:
        """The leads of these identities, locked, with their score rows."""
        stmt = _LOCKED_OWNERS if self._dialect == "postgresql" else _OWNERS
        return {(r.kind, r.app, r.value): r for r in await self._session.execute(stmt, {"refs": refs})}

    def _plain(self, owner: Any, activity: Activity) -> bool:
        """Recorded here exactly as LeadRepository would, touch by touch."""
        if owner.erased_at is not None or owner.merged_into_id is not None or owner.stage == MERGED:
            return False
        scored = [touch for touch in activity.touches if touch.kind in self._model.scored_kinds]
        if not scored:
            return True
        if len(scored) > 1 or owner.state is None or owner.rules != self._model.fingerprint:
            return False  # quadrant by quadrant, or a score to rebuild from the history: the handler's work
        last = owner.state.get("last")
        return not last or activity.occurred_at.timestamp() >= float(last[0])

    @staticmethod
    def _activity_row(t: _Taken) -> dict[str, Any]:
        """The lead's activity columns after the event (LeadRepository.note_oa_interaction, add_touchpoint)."""
        at, owner = t.activity.occurred_at, t.owner
        oa = owner.oa_last_interaction_at
        if t.activity.oa_interaction and (oa is None or at > oa):
            oa = at
        return {"b_id": owner.id, "b_activity": max(owner.last_activity_at, at), "b_oa": oa}

    @staticmethod
    def _unchanged(t: _Taken) -> dict[str, Any]:
        return {"b_id": t.owner.id, "b_activity": t.owner.last_activity_at, "b_oa": t.owner.oa_last_interaction_at}

    async def _score(self, t: _Taken, ids: dict[tuple[int, str], int], rows: list[dict[str, Any]]
                     ) -> list[DomainEvent]:
        """The touches' scoring and what it publishes, in the order LeadRepository.add_touchpoint has them."""
        heard: list[DomainEvent] = []
        owner, at = t.owner, t.activity.occurred_at
        for touch in t.activity.touches:
            touchpoint_id = ids.get((t.inbox_id, touch.kind))
            if touchpoint_id is not None and touch.kind in self._model.scored_kinds:
                event = ScoreEvent(touchpoint_id, touch.kind, at, touch.source.channel, touch.source.scene,
                                   touch.detail)
                state = self._model.step(MotivationState.from_json(owner.state), event)
                if state is None:  # an equal time with a lower id: the history decides, as in LeadScorer
                    state = self._model.replay(await scored_events(self._session, owner.id,
                                                                   self._model.scored_kinds))
                now = self._clock()
                ability, motivation, quadrant = self._model.standing(owner.profile or {}, state, now)
                rows.append({"b_lead": owner.id, "b_ability": ability, "b_motivation": motivation,
                             "b_quadrant": quadrant, "b_state": state.to_json(), "b_at": now})
                heard += score_events(self._events, owner.id, owner.stage, owner.quadrant, quadrant,
                                      owner.motivation, motivation, now, touchpoint_id)
            heard += touchpoint_events(self._events, owner.id, touch.kind, at, touch.detail)
        return heard
