"""WeCom customer transfers (bot/handoff/transfer.py): the SQL.

A transfer is its audit entry (action "customer.transfer", target_kind "customer_transfer": who, when, from
whom to whom, the batch rows) plus one outbox row per batch of ≤ 100 customers. The row's payload is the call,
its response WeCom's per-customer answer; the poll adds "takeover" (transfer_result per external_userid),
"moved" (lead ids whose owner moved) and "poll" ({"next_at", "done"}) to that response. No table of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leads.customer_transfer import METHOD
from leads.identity import WECOM_EXTERNAL
from storage.models import Assignment, AuditEntry, Identity, Lead, OutboxMessage
from storage.repos.assignments import add_assignment_event

ACTION, TARGET_KIND = "customer.transfer", "customer_transfer"
_SCAN = 500  # batch rows read per query while erasing a person's customers from them


@dataclass(frozen=True, slots=True)
class Customer:
    lead_id: int
    external_userid: str


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    status: str
    attempts: int
    payload: dict[str, Any]
    response: dict[str, Any] | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: int
    at: datetime
    actor_user_id: int | None
    detail: dict[str, Any]  # from_user_id, to_user_id, batches (outbox ids), customers, resigned
    batches: list[BatchRow]


async def wecom_customers(session: AsyncSession, user_id: int, wecom_userid: str,
                          lead_ids: Sequence[int] | None = None) -> list[Customer]:
    """The member's WeCom customers: live leads with an external_userid whose follow-up member (the
    ``wecom_owner`` the add_external_contact event recorded) is this member; a lead whose follow-up member was
    never recorded counts when this user owns it. One external_userid per lead (its first), by lead id."""
    owner = Lead.profile["wecom_owner"].as_string()
    stmt = (select(Lead.id, Identity.value).join(Identity, Identity.lead_id == Lead.id)
            .where(Identity.kind == WECOM_EXTERNAL, Lead.merged_into_id.is_(None), Lead.erased_at.is_(None),
                   or_(owner == wecom_userid, and_(owner.is_(None), Lead.owner_user_id == user_id)))
            .order_by(Lead.id, Identity.id))
    if lead_ids is not None:
        stmt = stmt.where(Lead.id.in_(sorted(set(lead_ids))))
    seen: dict[int, str] = {}
    for lead_id, value in (await session.execute(stmt)).all():
        seen.setdefault(lead_id, value)
    return [Customer(lead_id, value) for lead_id, value in seen.items()]


async def batch_rows(session: AsyncSession, ids: list[int], *, lock: bool = False) -> list[BatchRow]:
    """Outbox rows by id (``lock``: FOR UPDATE on PostgreSQL), in id order."""
    if not ids:
        return []
    stmt = select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    rows = (await session.execute(stmt)).scalars()
    return [BatchRow(r.id, r.status, r.attempts, dict(r.payload or {}), dict(r.response) if r.response else None,
                     r.sent_at) for r in rows]


def _record(entry: AuditEntry, batches: list[BatchRow]) -> TransferRecord:
    return TransferRecord(entry.id, entry.at, entry.actor_user_id, dict(entry.after or {}), batches)


def _is_transfer(entry: AuditEntry | None) -> bool:
    return (entry is not None and entry.action == ACTION and entry.target_kind == TARGET_KIND
            and entry.outcome == "ok")


async def get_transfer(session: AsyncSession, transfer_id: int) -> TransferRecord | None:
    entry = await session.get(AuditEntry, transfer_id)
    if entry is None or not _is_transfer(entry):
        return None
    return _record(entry, await batch_rows(session, [int(i) for i in (entry.after or {}).get("batches", [])]))


async def transfers_since(session: AsyncSession, since: datetime) -> list[TransferRecord]:
    """Transfers started at or after ``since``, with their batches (the action's index finds the few)."""
    entries = (await session.execute(
        select(AuditEntry).where(AuditEntry.action == ACTION, AuditEntry.target_kind == TARGET_KIND,
                                 AuditEntry.outcome == "ok", AuditEntry.at >= since).order_by(AuditEntry.id)
    )).scalars().all()
    out = []
    for entry in entries:
        ids = [int(i) for i in (entry.after or {}).get("batches", [])]
        out.append(_record(entry, await batch_rows(session, ids)))
    return out


async def save_poll(session: AsyncSession, batch_id: int, response: dict[str, Any]) -> None:
    """The batch row's response with the poll's results (WeCom's own answer stays as it was)."""
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == batch_id).values(response=response))


async def move_owner(session: AsyncSession, lead_id: int, user_id: int, wecom_userid: str, *, at: datetime,
                     detail: dict[str, Any]) -> int | None:
    """WeCom reported 接替完毕: the lead (its merge survivor) now belongs to ``user_id``, whose WeCom member
    follows the customer; the lead's latest assignment gets a "transfer" event. The lead moved, or None."""
    # Locked and read afresh: the profile is rewritten whole, so an edit committed meanwhile must be in it.
    lead = await session.get(Lead, lead_id, with_for_update=True, populate_existing=True)
    if lead is not None and lead.merged_into_id is not None:
        lead = await session.get(Lead, lead.merged_into_id, with_for_update=True, populate_existing=True)
    if lead is None or lead.erased_at is not None:
        return None
    lead.owner_user_id = user_id
    lead.profile = {**(lead.profile or {}), "wecom_owner": wecom_userid}
    latest = (await session.execute(select(Assignment.id).where(Assignment.lead_id == lead.id)
                                    .order_by(Assignment.id.desc()).limit(1))).scalar()
    if latest is not None:
        await add_assignment_event(session, latest, lead.id, "transfer", at=at, detail=detail)
    await session.flush()
    return lead.id


async def erase_customers(session: AsyncSession, lead_ids: Collection[int], external_userids: Collection[str]) -> int:
    """PIPL erasure (storage/repos/erasure.py), in the caller's transaction: the erased person's customers
    leave every batch row. A row holds up to 100 people and so has no lead_id: erasing by lead misses it.

    The person's external_userid goes from the payload together with its lead id (the two lists stay aligned)
    and from the response (WeCom's "customer" answers, the poll's "takeover" and "moved"); the payload's
    "erased" counts them, so a batch's customers plus its erased still add up to the call that was made. Other
    customers are untouched. A batch not yet sent and left without customers is cancelled (an empty call would
    fail). The transfer's audit entry holds only counts and row ids. Transfers are rare, the rows carry no
    index on their content: the method's rows are scanned by id, a page at a time, and matched here. How many
    rows changed."""
    leads, euids = {int(i) for i in lead_ids}, set(external_userids)
    if not leads and not euids:
        return 0
    hits: list[int] = []
    after = 0
    while True:
        page = (await session.execute(
            select(OutboxMessage.id, OutboxMessage.payload, OutboxMessage.response)
            .where(OutboxMessage.method == METHOD, OutboxMessage.id > after).order_by(OutboxMessage.id).limit(_SCAN)
        )).all()
        hits.extend(i for i, payload, response in page if _scrub(payload or {}, response, leads, euids)[2])
        if len(page) < _SCAN:
            break
        after = page[-1][0]
    # Re-read under the row lock: the poll and the sender (PostgreSQL) rewrite a row's response under it, and
    # what they wrote for the other customers must not be lost.
    for row in await batch_rows(session, hits, lock=True):
        payload, response, removed = _scrub(row.payload, row.response, leads, euids)
        values: dict[str, Any] = {"payload": payload, "response": response}
        if not payload.get("external_userid") and row.status in ("pending", "sandboxed"):
            values.update(status="cancelled", last_error="the customers' data was erased")
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
    return len(hits)


def _scrub(payload: dict[str, Any], response: dict[str, Any] | None, leads: set[int],
           euids: set[str]) -> tuple[dict[str, Any], dict[str, Any] | None, bool]:
    """The row's payload and response without these customers, and whether anything of them was there."""
    ids = [int(i) for i in payload.get("lead_ids") or []]
    users = [str(u) for u in payload.get("external_userid") or []]
    gone = {n for n in range(max(len(ids), len(users)))
            if (n < len(ids) and ids[n] in leads) or (n < len(users) and users[n] in euids)}
    # Matched by either half: the other half is the same customer (a lead merged since, an identity changed).
    leads = leads | {ids[n] for n in gone if n < len(ids)}
    euids = euids | {users[n] for n in gone if n < len(users)}
    found = bool(gone)
    if gone:
        payload = {**payload, "lead_ids": [x for n, x in enumerate(ids) if n not in gone],
                   "external_userid": [x for n, x in enumerate(users) if n not in gone],
                   "erased": int(payload.get("erased") or 0) + len(gone)}
    if response:
        response = dict(response)
        customers = response.get("customer")
        if isinstance(customers, list):
            kept = [c for c in customers if not (isinstance(c, dict) and c.get("external_userid") in euids)]
            found = found or len(kept) < len(customers)
            response["customer"] = kept
        takeover = response.get("takeover")
        if isinstance(takeover, dict):
            found = found or bool(euids & takeover.keys())
            response["takeover"] = {k: v for k, v in takeover.items() if k not in euids}
        moved = response.get("moved")
        if isinstance(moved, list):
            found = found or any(int(m) in leads for m in moved)
            response["moved"] = [m for m in moved if int(m) not in leads]
    return payload, response, found
