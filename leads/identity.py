"""Identity resolution: which lead an event belongs to, which leads merge, which merges must wait for a
person. Pure: the repository gathers the facts, this decides, the repository applies the plan."""

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


@dataclass(frozen=True, slots=True)
class IdentityKey:
    kind: str
    app: str
    value: str
    verified: bool = False

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.kind, self.app, self.value)


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
class ResolutionPlan:
    target_id: int | None  # None: create a new lead
    attach: tuple[IdentityKey, ...]
    merges: tuple[Merge, ...] = ()
    conflicts: tuple[Conflict, ...] = field(default=())


def _age(lead: KnownLead) -> tuple[datetime, int]:
    return (lead.created_at, lead.id)


def plan_resolution(observed: list[IdentityKey], owners: dict[tuple[str, str, str], KnownLead]) -> ResolutionPlan:
    """Decide how the identities seen in one event map onto leads.

    ``observed`` lists the identities the event carries, the sender's own first; ``owners`` maps each
    already-known identity to its lead. The oldest lead survives a merge, so its id stays stable. A lead
    whose verified phones differ from the survivor's is never merged: a conflict is recorded instead.
    """
    if not observed:
        raise ValueError("an event must carry at least one identity")
    attach = tuple(i for i in observed if i.ref not in owners)
    leads = sorted({lead.id: lead for lead in owners.values()}.values(), key=_age)
    if not leads:
        return ResolutionPlan(target_id=None, attach=attach)

    survivor = leads[0]
    phones = set(survivor.verified_phones)
    merged_ids: set[int] = {survivor.id}
    merges: list[Merge] = []
    conflicts: list[Conflict] = []
    for lead in leads[1:]:
        via = _link(observed, owners, lead.id)
        if phones and lead.verified_phones and not (phones & lead.verified_phones):
            conflicts.append(Conflict(survivor.id, lead.id, via,
                                      "both leads have verified phone numbers and they differ"))
            continue
        merges.append(Merge(survivor.id, lead.id, via))
        merged_ids.add(lead.id)
        phones |= lead.verified_phones

    sender_owner = owners.get(observed[0].ref)
    if sender_owner is not None and sender_owner.id not in merged_ids:
        target = sender_owner.id  # the sender's lead is in conflict: keep the touch with the sender
    else:
        target = survivor.id
    return ResolutionPlan(target_id=target, attach=attach, merges=tuple(merges), conflicts=tuple(conflicts))


def _link(observed: list[IdentityKey], owners: dict[tuple[str, str, str], KnownLead], lead_id: int) -> IdentityKey:
    return next(i for i in observed if i.ref in owners and owners[i.ref].id == lead_id)
