"""Storing a validated form submission: the same code for the H5 pages and the mini-program.

One transaction: resolve the lead from the visitor's identities (merging per the identity rules), update
the profile and consent, record the form_submit touchpoint and the form's score event. Either all of it
is stored or none of it. Only the visitor's WeChat identities (and a phone WeChat verified) pick the lead:
a typed phone or email never does (leads/identity.py), so what is typed lands on the visitor's own lead
(or a new one) and can never overwrite someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.capture.erased import still_valid, voided_by_erasure
from bot.config.capture import FormDef
from bot.config.core import Config
from leads.events import DomainEvents
from leads.forms import Validated, consent_record, known_fields
from leads.identity import EMAIL, PHONE, IdentityKey
from leads.scoring import ScoreModel
from leads.sources import Source, resolve_source
from storage.repos.events import EventTx
from storage.repos.identities import knowledge_of
from storage.repos.leads import LeadRepository
from storage.tx import in_transaction

if TYPE_CHECKING:  # the app's session factory (storage.db.session_factory), handed to storage
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@dataclass(frozen=True, slots=True)
class Submission:
    form: FormDef
    data: Validated
    own: list[IdentityKey]  # the visitor's WeChat identities (OA / mini-program OpenID, UnionID)
    via: str  # "h5" or "miniprogram": the default channel when neither src nor the form names one
    source_code: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    verified_phone: str | None = None  # from the mini-program's getPhoneNumber: overrides a typed one
    # When ``own`` was vouched for (ms since the epoch: the H5 cookie's binding, the mini-program login): an
    # erasure of the person since then voids it (bot/capture/erased.py). The H5 submission then counts as
    # anonymous; with ``refuse_voided`` (the mini-program, whose session the erasure ended) CredentialVoided is
    # raised and nothing stored. None: not checked here.
    own_since_ms: int | None = None
    refuse_voided: bool = False


class CredentialVoided(Exception):
    """The visitor's credential was issued before their data was erased (``Submission.refuse_voided``)."""


async def known_for(sessions: async_sessionmaker, own: list[IdentityKey]) -> set[str]:
    """The fields the visitor's lead has already given (empty for an unknown visitor)."""
    if not own:
        return set()
    async with sessions() as session:
        known = await knowledge_of(session, own)
    return set() if known is None else known_fields(known.profile, known.identity_kinds)


def _observed(sub: Submission, own: list[IdentityKey]) -> list[IdentityKey]:
    # The sender's own identity first: in a merge conflict the touch stays with the sender's lead.
    contact = sub.data.contact
    observed = list(own)
    phone = sub.verified_phone or contact.get("phone")
    if phone:
        observed.append(IdentityKey(PHONE, "", phone, verified=sub.verified_phone is not None))
    if contact.get("email"):
        observed.append(IdentityKey(EMAIL, "", contact["email"]))
    return observed


T = TypeVar("T")


async def record_submission(sessions: async_sessionmaker, config: Config, scoring: ScoreModel,
                            events: DomainEvents[EventTx], sub: Submission, now: datetime, *,
                            then: Callable[[AsyncSession, int], Awaitable[None]] | None = None) -> int:
    """Store the submission (and score it, publishing what that changes to ``events``); returns the lead's id.

    ``then(session, lead_id)`` runs last in the same transaction (the mini-program's idempotency key)."""
    async def work(session: AsyncSession) -> int:
        lead_id = await _store(session, LeadRepository(session, scoring, lambda: now, events=events), config, sub,
                               now)
        if then is not None:
            await then(session, lead_id)
        return lead_id

    return await in_transaction(sessions, work)


async def _store(session: AsyncSession, repo: LeadRepository, config: Config, sub: Submission, now: datetime
                 ) -> int:
    form = sub.form
    own, since = sub.own, sub.own_since_ms
    if own and since is not None and await voided_by_erasure(session, config, own, since):
        if sub.refuse_voided:
            raise CredentialVoided
        own = []
    lead = await repo.resolve(_observed(sub, own), now=now, inbox_id=None,
                              display_name=sub.data.values.get("name"))
    if own and since is not None:
        await still_valid(session, config, own, since)
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
