"""What the journey executor knows of a batch of leads at the time of their steps, in a few set-based reads.

The send policy decides on these facts at send time (consent revoked yesterday counts today), so they are read
in the run's transaction, never cached. Behaviour comes from touchpoints: "opened" is a tracked content link
opened, "clicked" also counts the OA menu's link and click events. A lead that was merged into another or
erased has no facts: its enrolments end (the survivor has its own).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.batches.reasons import COUNTED
from leads.identity import OA_OPENID, WECOM_EXTERNAL
from leads.journeys.machine import LeadView
from storage.models import Assignment, BatchRecipient, Identity, JourneyStep, Lead, LeadTag, Touchpoint, User

Db = AsyncSession | AsyncConnection
OPENED = ("content_view", "content_download")
CLICKED = (*OPENED, "oa_view", "oa_click")
BEHAVIOUR_WINDOW = timedelta(days=60)  # the longest "within" a journey condition is expected to ask about
CAP_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LeadFacts:
    view: LeadView
    name: str
    openid: str | None  # the OA follower's OpenID
    external_userid: str | None  # the WeCom external contact
    sender: str | None  # the member WeCom routes a message task to: the one who added the contact, else the owner
    owner_user_id: int | None
    owner_wecom: str | None  # the owner's WeCom userid, for notes to them


async def lead_facts(db: Db, lead_ids: Collection[int], now: datetime) -> dict[int, LeadFacts]:
    ids = sorted(set(lead_ids))
    if not ids:
        return {}
    leads = (await db.execute(
        select(Lead.id, Lead.stage, Lead.consent, Lead.profile, Lead.oa_last_interaction_at, Lead.motivation,
               Lead.owner_user_id, Lead.display_name, User.wecom_userid)
        .outerjoin(User, (User.id == Lead.owner_user_id) & User.disabled_at.is_(None))
        .where(Lead.id.in_(ids), Lead.merged_into_id.is_(None), Lead.erased_at.is_(None)))).all()
    tags: dict[int, set[str]] = defaultdict(set)
    for lead_id, tag in await db.execute(select(LeadTag.lead_id, LeadTag.tag).where(LeadTag.lead_id.in_(ids))):
        tags[lead_id].add(tag)
    first: dict[tuple[int, str], str] = {}
    for lead_id, kind, value in await db.execute(
            select(Identity.lead_id, Identity.kind, Identity.value)
            .where(Identity.lead_id.in_(ids), Identity.kind.in_((OA_OPENID, WECOM_EXTERNAL))).order_by(Identity.id)):
        first.setdefault((lead_id, kind), value)
    behaviour: dict[int, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for lead_id, kind, at in await db.execute(
            select(Touchpoint.lead_id, Touchpoint.kind, Touchpoint.occurred_at)
            .where(Touchpoint.lead_id.in_(ids), Touchpoint.kind.in_(CLICKED),
                   Touchpoint.occurred_at >= now - BEHAVIOUR_WINDOW)):
        behaviour[lead_id]["clicked"].append(at)
        if kind in OPENED:
            behaviour[lead_id]["opened"].append(at)
    reasons: dict[int, str] = {}
    for lead_id, reason in await db.execute(
            select(Assignment.lead_id, Assignment.return_reason)
            .where(Assignment.lead_id.in_(ids), Assignment.status == "returned").order_by(Assignment.id)):
        reasons[lead_id] = reason or ""
    out: dict[int, LeadFacts] = {}
    for lead_id, stage, consent, profile, last_oa, motivation, owner_id, name, owner_wecom in leads:
        profile = profile or {}
        openid, euid = first.get((lead_id, OA_OPENID)), first.get((lead_id, WECOM_EXTERNAL))
        added_by = profile.get("wecom_owner")
        sender = added_by if isinstance(added_by, str) and added_by else owner_wecom
        view = LeadView(
            stage=stage, tags=frozenset(tags.get(lead_id, ())),
            profile={k: str(v) for k, v in profile.items() if isinstance(v, str | int | float) and
                     not isinstance(v, bool)},
            unsubscribed=consent == "revoked", follows_oa=bool(openid) and profile.get("oa_following") is not False,
            wecom_contact=bool(euid and sender), last_inbound_at=last_oa,
            behaviour={k: tuple(v) for k, v in behaviour.get(lead_id, {}).items()},
            motivation=float(motivation or 0.0), return_reason=reasons.get(lead_id, ""))
        out[lead_id] = LeadFacts(view, name or "", openid, euid, sender, owner_id, owner_wecom)
    return out


async def recent_sends(db: Db, lead_ids: Collection[int], now: datetime) -> dict[int, dict[str, list[datetime]]]:
    """Journey and batch messages that went to each lead in the last week, per channel (the weekly caps)."""
    sends: dict[int, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    ids = sorted(set(lead_ids))
    if not ids:
        return sends
    for lead_id, channel, at in await db.execute(
            select(JourneyStep.lead_id, JourneyStep.channel, JourneyStep.at)
            .where(JourneyStep.lead_id.in_(ids), JourneyStep.outcome == "sent", JourneyStep.at > now - CAP_WINDOW)):
        sends[lead_id][channel].append(at)
    for lead_id, channel, at in await db.execute(
            select(BatchRecipient.lead_id, BatchRecipient.channel, BatchRecipient.created_at)
            .where(BatchRecipient.lead_id.in_(ids), BatchRecipient.status.in_(COUNTED),
                   BatchRecipient.created_at > now - CAP_WINDOW)):
        sends[lead_id][channel].append(at)
    return sends
