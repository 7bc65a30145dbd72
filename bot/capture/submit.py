"""Storing a validated form submission: the same code for the H5 pages and the mini-program.

One transaction: resolve the lead from the visitor's identities (merging per the identity rules), update
the profile and consent, record the form_submit touchpoint and the form's score event. Either all of it
is stored or none of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config.capture import FormDef
from bot.config.core import Config
from leads.events import DomainEvents
from leads.forms import Validated, consent_record, known_fields
from leads.identity import EMAIL, PHONE, IdentityKey
from leads.scoring import ScoreModel
from leads.sources import Source, resolve_source
from storage.repos.events import EventTx
from storage.repos.identities import knowledge_of, mark_phone_verified
from storage.repos.leads import LeadRepository
from storage.tx import in_transaction

if TYPE_CHECKING:  # the app's session factory (storage.db.session_factory), handed to storage
    from sqlalchemy.ext.asyncio import async_sessionmaker


@dataclass(frozen=True, slots=True)
class Submission:
    form: FormDef
    data: Validated
    own: list[IdentityKey]  # the visitor's WeChat identities (OA / mini-program OpenID, UnionID)
    via: str  # "h5" or "miniprogram": the default channel when neither src nor the form names one
    source_code: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    verified_phone: str | None = None  # from the mini-program's getPhoneNumber: overrides a typed one


async def known_for(sessions: async_sessionmaker, own: list[IdentityKey]) -> set[str]:
    """The fields the visitor's lead has already given (empty for an unknown visitor)."""
    if not own:
        return set()
    async with sessions() as session:
        known = await knowledge_of(session, own)
    return set() if known is None else known_fields(known.profile, known.identity_kinds)


def _observed(sub: Submission) -> list[IdentityKey]:
    # The sender's own identity first: in a merge conflict the touch stays with the sender's lead.
    contact = sub.data.contact
    observed = list(sub.own)
    phone = sub.verified_phone or contact.get("phone")
    if phone:
        observed.append(IdentityKey(PHONE, "", phone, verified=sub.verified_phone is not None))
    if contact.get("email"):
        observed.append(IdentityKey(EMAIL, "", contact["email"]))
    return observed


T = TypeVar("T")


async def record_submission(sessions: async_sessionmaker, config: Config, scoring: ScoreModel,
                            events: DomainEvents[EventTx], sub: Submission, now: datetime) -> int:
    """Store the submission (and score it, publishing what that changes to ``events``); returns the lead's id."""
    return await in_transaction(sessions, lambda session: _store(
        LeadRepository(session, scoring, lambda: now, events=events), config, sub, now))


async def _store(repo: LeadRepository, config: Config, sub: Submission, now: datetime) -> int:
    form = sub.form
    lead = await repo.resolve(_observed(sub), now=now, inbox_id=None,
                              display_name=sub.data.values.get("name"))
    if sub.verified_phone:
        # A number typed in a form earlier is now confirmed by WeChat: same identity, now verified.
        await mark_phone_verified(repo.session, lead.id, sub.verified_phone)
    privacy = config.capture.bot.privacy_text
    await repo.merge_profile(lead, {**sub.data.profile, "consent": consent_record(privacy, now, form.id, sub.via)})
    await repo.set_consent(lead, "granted", now)
    source = resolve_source(sub.source_code, config.channels,
                            Source(channel=form.channel or sub.via, scene=form.scene))
    # Field names only: the values live in the profile and identities, where erasure finds them.
    detail: dict[str, Any] = {"form": form.id, "via": sub.via, **sub.utm,
                              "fields": sorted({*sub.data.values, *(["phone"] if sub.verified_phone else [])})}
    await repo.add_touchpoint(lead, kind="form_submit", source=source, occurred_at=now, inbox_id=None,
                              detail=detail)
    if form.score_event:
        # content_id: a form that gates a download is the content item "form:<id>" for once-per-content caps.
        await repo.add_touchpoint(lead, kind=form.score_event, source=source, occurred_at=now, inbox_id=None,
                                  detail={"form": form.id, "content_id": f"form:{form.id}", "via": sub.via,
                                          **sub.utm})
    return lead.id
