"""Identity resolution: which lead an event belongs to, which leads merge, which merges must wait for a
person. Pure: the repository gathers the facts, this decides, the repository applies the plan.

Only strong identities decide: an OA or mini-program OpenID, a UnionID, a WeCom external_userid (WeChat
vouches for each) and a phone number WeChat verified. A typed phone or email (weak) anyone can type, so it
never picks an existing lead nor merges two: it attaches to the sender's own lead, and when another lead
holds it already a duplicate suggestion asks a person instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

OA_OPENID = "oa_openid"
UNIONID = "unionid"
MP_OPENID = "mp_openid"
WECOM_EXTERNAL = "wecom_external"
PHONE = "phone"
EMAIL = "email"
KINDS = (OA_OPENID, UNIONID, MP_OPENID, WECOM_EXTERNAL, PHONE, EMAIL)
STRONG_KINDS = frozenset({OA_OPENID, UNIONID, MP_OPENID, WECOM_EXTERNAL})
PHONE_CONFLICT = "both leads have verified phone numbers and they differ"


@dataclass(frozen=True, slots=True)
class IdentityKey:
    kind: str
    app: str
    value: str
    verified: bool = False

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.kind, self.app, self.value)

    @property
    def strong(self) -> bool:
        """WeChat vouches for it: it may decide which lead an event belongs to and merge leads."""
        return self.kind in STRONG_KINDS or (self.kind == PHONE and self.verified)


@dataclass(frozen=True, slots=True)
class KnownLead:
    id: int
    created_at: datetime
    verified_phones: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Merge:
    survivor_id: int
    merged_id: int
    via: IdentityKey


@dataclass(frozen=True, slots=True)
class Conflict:
    lead_id: int
    other_lead_id: int
    via: IdentityKey
    reason: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The event's lead and ``other_lead_id`` may be one person: ``via`` is a weak identity the other holds."""

    other_lead_id: int
    via: IdentityKey


@dataclass(frozen=True, slots=True)
class ResolutionPlan:
    target_id: int | None  # None: create a new lead
    attach: tuple[IdentityKey, ...]
    merges: tuple[Merge, ...] = ()
    conflicts: tuple[Conflict, ...] = field(default=())
    # Phone numbers a lead holds as typed that WeChat has now verified for the target: they move to the
    # target (if not there already) and become verified.
    verify: tuple[IdentityKey, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()


def _age(lead: KnownLead) -> tuple[datetime, int]:
    return (lead.created_at, lead.id)


def phones_clash(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two leads whose WeChat-verified numbers differ are two people, whatever else links them."""
    return bool(a) and bool(b) and not (a & b)


def plan_merge(a: KnownLead, b: KnownLead, via: IdentityKey) -> Merge | Conflict:
    """Merging two leads a person found to be one: the older survives, unless their verified phones clash."""
    survivor, other = sorted((a, b), key=_age)
    if phones_clash(survivor.verified_phones, other.verified_phones):
        return Conflict(survivor.id, other.id, via, PHONE_CONFLICT)
    return Merge(survivor.id, other.id, via)


def holds_strongly(identity: IdentityKey, owner: KnownLead) -> bool:
    """Does the owner's hold on this strong identity prove the event's sender is the owner?

    A verified phone proves it only against a lead that has the number verified too: a lead that merely
    typed it may have typed someone else's number.
    """
    return identity.strong and (identity.kind != PHONE or identity.value in owner.verified_phones)


def plan_resolution(observed: list[IdentityKey], owners: dict[tuple[str, str, str], KnownLead]) -> ResolutionPlan:
    """Decide how the identities seen in one event map onto leads.

    ``observed`` lists the identities the event carries, the sender's own first; ``owners`` maps each
    already-known identity to its lead (with all its verified phones when a phone is observed or several
    leads are involved). Only identities the owner holds strongly select and merge leads. The oldest lead
    survives a merge, so its id stays stable. A lead whose verified phones differ from the survivor's is
    never merged: a conflict is recorded instead.
    """
    if not observed:
        raise ValueError("an event must carry at least one identity")
    strong = [i for i in observed if i.ref in owners and holds_strongly(i, owners[i.ref])]
    leads = sorted({owners[i.ref].id: owners[i.ref] for i in strong}.values(), key=_age)
    merges: list[Merge] = []
    conflicts: list[Conflict] = []
    target: int | None = None
    own: set[int] = set()  # the leads whose identities end up on the target
    survivor_of: dict[int, int] = {}
    if leads:
        survivor = leads[0]
        phones = survivor.verified_phones
        own = {survivor.id}
        for lead in leads[1:]:
            via = next(i for i in strong if owners[i.ref].id == lead.id)
            if phones_clash(phones, lead.verified_phones):
                conflicts.append(Conflict(survivor.id, lead.id, via, PHONE_CONFLICT))
                continue
            merges.append(Merge(survivor.id, lead.id, via))
            own.add(lead.id)
            phones |= lead.verified_phones
        survivor_of = {lead_id: survivor.id for lead_id in own}
        sender_owner = owners[observed[0].ref] if observed[0] in strong else None
        if sender_owner is not None and sender_owner.id not in own:
            target, own = sender_owner.id, {sender_owner.id}  # in conflict: keep the touch with the sender
        else:
            target = survivor.id

    attach: list[IdentityKey] = []
    verify: list[IdentityKey] = []
    suggestions: list[Suggestion] = []
    for ident in observed:
        owner = owners.get(ident.ref)
        if owner is None:
            attach.append(ident)
        elif owner.id in own:
            if ident.kind == PHONE and ident.verified and ident.value not in owner.verified_phones:
                verify.append(ident)  # typed earlier by this very lead, now confirmed by WeChat
        elif ident not in strong:
            # Held by another lead that this event does not prove to be the sender: never moved onto the
            # sender nor the other way round; a person decides. Only a number WeChat verified for the sender
            # outranks the other lead's typed copy and moves over.
            suggestions.append(Suggestion(survivor_of.get(owner.id, owner.id), ident))
            if ident.strong:
                verify.append(ident)
    return ResolutionPlan(target_id=target, attach=tuple(attach), merges=tuple(merges), conflicts=tuple(conflicts),
                          verify=tuple(verify), suggestions=tuple(suggestions))
