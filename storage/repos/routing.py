"""Routing MQLs to salespeople: reads the facts and the team's members, locks, and writes what leads/routing.py
decides (the rules, the weighted round robin, who is eligible).

Safe with several processes (PostgreSQL): the leads' rows are locked first (in id order), so a lead is never
assigned twice; inside a team only the member given the lead is locked (storage/repos/round_robin.py), so one
team's routings run side by side. SQLite has one writer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.access import TEAM_LEAD
from leads.routing import DEFAULT_OWNER_RULE, LeadFacts, advance, floors, matching_rules
from storage.models import Lead, Team, TeamMember, Touchpoint, User
from storage.repos.assignments import (
    AssignmentRow,
    assign_lead,
    lock_leads,
    pending_assignments,
    pending_of_user,
)
from storage.repos.events import EventTx
from storage.repos.round_robin import read_members, save_member, take_member

if TYPE_CHECKING:
    from bot.config.handoff import RoutingConfig

log = logging.getLogger(__name__)

_leads, _tm, _users = Lead.__table__, TeamMember.__table__, User.__table__
_tp, _teams = Touchpoint.__table__, Team.__table__
_REASONS = {"sla.reassign": "超时未处理，改派", "member_disabled": "原负责人已停用，改派"}
_TEAM_IDS = select(_teams.c.name, _teams.c.id).where(_teams.c.name.in_(bindparam("b_names", expanding=True)))
_FIRST_CHANNEL = (select(_tp.c.channel).where(_tp.c.lead_id == _leads.c.id)
                  .order_by(_tp.c.occurred_at, _tp.c.id).limit(1).scalar_subquery())
_FACTS = (select(_leads.c.id, _leads.c.profile, _leads.c.quadrant, _leads.c.motivation, _FIRST_CHANNEL)
          .where(_leads.c.id.in_(bindparam("b_ids", expanding=True)),
                 and_(_leads.c.merged_into_id.is_(None), _leads.c.erased_at.is_(None)))
          .order_by(_leads.c.id).with_for_update(of=_leads))


@dataclass(frozen=True, slots=True)
class _Target:
    team_id: int | None
    team: str
    label: str  # the matched rule's name


async def route_lead(tx: EventTx, lead_id: int, routing: RoutingConfig, *, at: datetime, rule: str | None = None,
                     exclude_user_ids: frozenset[int] = frozenset(),
                     only_unassigned: bool = False) -> AssignmentRow | None:
    """Route one lead (matching rule's team, else the default owner) and assign it; the pending assignment it
    had is superseded. ``rule`` overrides the recorded rule name ("sla.reassign", "member_disabled");
    ``only_unassigned``: a lead that has a pending assignment keeps it (returned as is). None: nobody is
    available (logged; the lead stays with the SDRs)."""
    routed = await route_leads(tx, [lead_id], routing, at=at, rule=rule, exclude_user_ids=exclude_user_ids,
                               only_unassigned=only_unassigned)
    return routed.get(lead_id)


async def route_leads(tx: EventTx, lead_ids: Sequence[int], routing: RoutingConfig, *, at: datetime,
                      rule: str | None = None, exclude_user_ids: frozenset[int] = frozenset(),
                      only_unassigned: bool = False) -> dict[int, AssignmentRow | None]:
    """``route_lead`` for a batch: lead id -> its (new, or with ``only_unassigned`` existing) pending
    assignment, or None."""
    ids = sorted(set(lead_ids))
    if not ids:
        return {}
    db = tx.db
    facts = await _facts(db, ids)  # and the leads' row locks
    out: dict[int, AssignmentRow | None] = {}
    for missing in (i for i in ids if i not in facts):
        log.info("lead %s is unknown, merged or erased: not routed", missing)
        out[missing] = None
    if only_unassigned:  # read under the locks: a pending assignment another process just made is seen
        out.update(await pending_assignments(db, list(facts)))
        facts = {i: f for i, f in facts.items() if i not in out}
    teams = await _team_ids(db, {r.team for r in routing.rules})
    by_team: dict[int | None, list[tuple[int, _Target]]] = {}
    for lead_id, lead_facts in facts.items():
        target = _target(routing, lead_facts, teams)
        by_team.setdefault(target.team_id, []).append((lead_id, target))
    owner: list[int | None] = []  # looked up once, when first needed
    for team_id in sorted(by_team, key=lambda t: (t is None, t or 0)):
        leftovers = by_team[team_id]
        if team_id is not None:
            leftovers = await _route_team(tx, team_id, by_team[team_id], at=at, rule=rule,
                                          excluded=exclude_user_ids, out=out, unassigned=only_unassigned)
        for lead_id, target in leftovers:
            if not owner:
                owner.append(await _default_owner(db, routing.default_owner, exclude_user_ids))
            out[lead_id] = await _to_owner(tx, lead_id, owner[0], target, at=at, rule=rule)
    return out


def _target(routing: RoutingConfig, facts: LeadFacts, teams: dict[str, int]) -> _Target:
    for match in matching_rules(routing.rules, facts):
        team_id = teams.get(match.rule.team)
        if team_id is not None:
            return _Target(team_id, match.rule.team, match.label)
        log.warning("%s names team %r, which does not exist: skipped", match.label, match.rule.team)
    return _Target(None, "", "")


async def _route_team(tx: EventTx, team_id: int, leads: list[tuple[int, _Target]], *, at: datetime,
                      rule: str | None, excluded: frozenset[int], out: dict[int, AssignmentRow | None],
                      unassigned: bool = False) -> list[tuple[int, _Target]]:
    """Assign the team's leads by the round robin; returns the ones nobody in the team could take.
    ``unassigned``: the leads were checked to have no pending assignment (under their locks)."""
    db = tx.db
    members = await read_members(db, team_id)
    # Whom to lift (fell two rounds behind), judged on the committed state as read: this transaction's own
    # advances (a batch) and the fresher states it learns must not make the rest look behind.
    lift = floors(members, excluded)
    leftovers: list[tuple[int, _Target]] = []
    for lead_id, target in leads:
        chosen = await take_member(tx, team_id, members, lead_id, at=at, excluded=excluded)
        if chosen is None:
            log.info("team %r has nobody available for lead %s", target.team, lead_id)
            leftovers.append((lead_id, target))
            continue
        chosen = advance(chosen, floor=lift.get(chosen.user_id, chosen.virtual_time), at=at)
        members = [chosen if m.user_id == chosen.user_id else m for m in members]
        reason = _reason(rule, f"匹配规则「{target.label}」，团队「{target.team}」轮转分配")
        out[lead_id] = await assign_lead(tx, lead_id, chosen.user_id, rule=rule or target.label, reason=reason,
                                         at=at, team_id=team_id, unassigned=unassigned)
        await save_member(db, team_id, chosen)
    return leftovers


async def _team_ids(db: AsyncSession | AsyncConnection, names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = (await db.execute(_TEAM_IDS, {"b_names": sorted(names)})).all()
    return {name: team_id for name, team_id in rows}


async def _default_owner(db: AsyncSession | AsyncConnection, username: str, excluded: frozenset[int]) -> int | None:
    if not username:
        return None
    row = (await db.execute(select(_users.c.id, _users.c.disabled_at, _users.c.role)
                            .where(_users.c.username == username))).first()
    if row is None or row.disabled_at is not None or row.id in excluded:
        log.warning("routing.default_owner is unknown, disabled or excluded: the MQL is left to the SDRs")
        return None
    return int(row.id)


async def _to_owner(tx: EventTx, lead_id: int, owner: int | None, target: _Target, *, at: datetime,
                    rule: str | None) -> AssignmentRow | None:
    if owner is None:
        log.info("lead %s: no rule's team could take it and no default owner: left to the SDRs", lead_id)
        return None
    why = (f"团队「{target.team}」暂无可分配成员，分配给默认负责人" if target.team
           else "未匹配任何规则，分配给默认负责人")
    return await assign_lead(tx, lead_id, owner, rule=rule or DEFAULT_OWNER_RULE, reason=_reason(rule, why), at=at)


def _reason(rule: str | None, why: str) -> str:
    prefix = _REASONS.get(rule or "", "")
    return f"{prefix}：{why}" if prefix else why


async def _facts(db: AsyncSession | AsyncConnection, lead_ids: list[int]) -> dict[int, LeadFacts]:
    """The leads' routing facts in one statement (live leads only: merged or erased ones are not routed), under
    the leads' row locks (PostgreSQL, in id order: two transactions never wait on each other in a circle)."""
    if not lead_ids:
        return {}
    rows: list[Any] = list((await db.execute(_FACTS, {"b_ids": lead_ids})).all())
    return {r[0]: LeadFacts.of(r[0], r[1], channel=r[4], quadrant=r[2], motivation=r[3]) for r in rows}


async def team_lead_of(db: AsyncSession | AsyncConnection, user_id: int) -> list[int]:
    """The enabled team leads of the teams the user is in (the user too, when they lead one), by id."""
    mine = select(_tm.c.team_id).where(_tm.c.user_id == user_id)
    stmt = (select(_tm.c.user_id).join(_users, _users.c.id == _tm.c.user_id)
            .where(_tm.c.team_id.in_(mine), _users.c.role == TEAM_LEAD, _users.c.disabled_at.is_(None))
            .distinct())
    return sorted((await db.execute(stmt)).scalars())


async def reroute_member(tx: EventTx, user_id: int, routing: RoutingConfig, *, at: datetime,
                         rule: str = "member_disabled") -> dict[int, AssignmentRow | None]:
    """Route the member's pending assignments to others (excluding them), in the caller's transaction: called
    when the member is disabled. Lead id -> its new pending assignment; None when nobody could take it (the
    lead keeps the pending assignment, logged: the SLA escalates it, or a team lead assigns it by hand)."""
    held = [row.lead_id for row in await pending_of_user(tx.db, user_id)]
    if not held:
        return {}
    await lock_leads(tx.db, held)
    still = [lead_id for lead_id, row in (await pending_assignments(tx.db, held)).items() if row.user_id == user_id]
    out = await route_leads(tx, still, routing, at=at, rule=rule, exclude_user_ids=frozenset({user_id}))
    for lead_id in (i for i, row in out.items() if row is None):
        log.warning("lead %s: nobody could take it from disabled user %s: it stays pending", lead_id, user_id)
    return out
