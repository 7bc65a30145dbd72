"""What the hand-off's WeCom cards read and write: the facts a card shows, the member behind a click, the
card's outbox row (its WeCom response_code), the waiting cards a digest replaces, and the erased people taken
out of digests (PIPL).

Core statements where the caller may hold a Core connection (the push and the card update run inside the
publisher's transaction: an ORM session, or the connection of ``leadrelay scores recompute``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import Lead, LeadScore, OutboxMessage, Touchpoint, User

Db = AsyncSession | AsyncConnection
MERGED = "merged"  # an outbox row replaced by a digest (storage.repos.outbox.OUTBOX_STATUSES)
# The outbox method of a digest card (bot/outbox/methods.py): named here so the erasure below, which storage runs
# and which may not import bot, finds the rows.
DIGEST_METHOD = "wecom.digest_card"
REDACTED = "（已删除）"
_ELLIPSIS = "…"  # what bot/handoff/cards.py ``fit`` ends a cut text with
_LEAD_IN = re.compile(r"\W*")  # a line's bullet ("· ") before the title
_SCAN = 500  # digest rows read per query while erasing a person from them


@dataclass(frozen=True, slots=True)
class CardFacts:
    lead_id: int
    display_name: str
    profile: dict[str, Any]
    ability: float | None
    motivation: float | None
    quadrant: str | None
    score_rules: str | None  # the fingerprint the stored state was built with
    score_state: dict[str, Any] | None
    first_channel: str
    first_scene: str


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    name: str
    wecom_userid: str | None
    card_style: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class PushRow:
    id: int
    method: str
    status: str
    payload: dict[str, Any]
    response: dict[str, Any] | None


async def card_facts(db: Db, lead_id: int) -> CardFacts | None:
    lead = (await db.execute(
        select(Lead.id, Lead.display_name, Lead.profile, Lead.ability, Lead.motivation, Lead.quadrant,
               LeadScore.rules, LeadScore.state)
        .select_from(Lead).outerjoin(LeadScore, LeadScore.lead_id == Lead.id).where(Lead.id == lead_id))).first()
    if lead is None:
        return None
    first = (await db.execute(
        select(Touchpoint.channel, Touchpoint.scene).where(Touchpoint.lead_id == lead_id)
        .order_by(Touchpoint.occurred_at, Touchpoint.id).limit(1))).first()
    channel, scene = (first.channel, first.scene) if first is not None else ("", "")
    return CardFacts(lead.id, lead.display_name or "", dict(lead.profile or {}), lead.ability, lead.motivation,
                     lead.quadrant, lead.rules, lead.state, channel, scene)


async def member(db: Db, user_id: int) -> Member | None:
    row = (await db.execute(select(User.id, User.display_name, User.username, User.wecom_userid, User.card_style,
                                   User.disabled_at).where(User.id == user_id))).first()
    if row is None:
        return None
    return Member(row.id, row.display_name or row.username, row.wecom_userid or None, row.card_style,
                  row.disabled_at is not None)


async def users_by_wecom_userid(session: AsyncSession, wecom_userid: str, *, limit: int = 3) -> list[User]:
    """Users bound to this WeCom member, enabled ones first, then by id. users.wecom_userid is not unique (an
    admin can give two users the same member): three rows tell one enabled user from none or several."""
    stmt = (select(User).where(User.wecom_userid == wecom_userid)
            .order_by(User.disabled_at.is_not(None), User.id).limit(limit))
    return list((await session.execute(stmt)).scalars())


def sole_enabled(users: Collection[User]) -> User | None:
    """The one enabled user among ``users``; None when there is none or several (an ambiguous mapping acts for
    nobody: not the card's 接受, not the mobile sign-in)."""
    enabled = [u for u in users if u.disabled_at is None]
    return enabled[0] if len(enabled) == 1 else None


async def user_by_wecom_userid(session: AsyncSession, wecom_userid: str) -> User | None:
    """The active user with this WeCom userid; None when there is none or several."""
    return sole_enabled(await users_by_wecom_userid(session, wecom_userid))


def member_label(wecom_userid: str) -> str:
    """The audit actor of a WeCom member who is no (single, active) user: a short hash, so the log can tell
    repeated attempts by one member apart without keeping their WeCom userid (the users table is where userids
    live). The same label as handlers/cards.py gives a card click."""
    return "wecom:" + hashlib.sha256(wecom_userid.encode("utf-8", "surrogatepass")).hexdigest()[:12]


async def push_row(db: Db, idempotency_key: str) -> PushRow | None:
    row = (await db.execute(select(OutboxMessage.id, OutboxMessage.method, OutboxMessage.status,
                                   OutboxMessage.payload, OutboxMessage.response)
                            .where(OutboxMessage.idempotency_key == idempotency_key))).first()
    return None if row is None else PushRow(row.id, row.method, row.status, row.payload or {}, row.response)


async def cancel_if_pending(db: Db, row_id: int, reason: str) -> bool:
    """Cancel an unsent row; False when it was sent (or decided) meanwhile. On PostgreSQL this waits for a
    sender holding the row and then sees its outcome."""
    result = await db.execute(update(OutboxMessage).where(OutboxMessage.id == row_id,
                                                          OutboxMessage.status == "pending")
                              .values(status="cancelled", last_error=reason, next_attempt_at=None)
                              .returning(OutboxMessage.id))
    return result.first() is not None


async def waiting_for_member(session: AsyncSession, *, methods: Collection[str], key: str, member_id: str,
                             exclude_id: int, skip_locked: bool) -> list[OutboxMessage]:
    """Pending rows of ``methods`` whose payload ``key`` is ``member_id``, oldest first (locked on PostgreSQL,
    passing over rows another sender holds: that sender decides them)."""
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.method.in_(sorted(methods)),
                   OutboxMessage.payload[key].as_string() == member_id, OutboxMessage.id != exclude_id)
            .order_by(OutboxMessage.id).limit(1000))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())


async def delay_row(session: AsyncSession, row_id: int, at: datetime) -> None:
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(next_attempt_at=at))


def mark_merged(rows: Collection[OutboxMessage], digest_id: int) -> None:
    """The rows are done: their content went out in the digest row ``digest_id``."""
    for row in rows:
        row.status = MERGED
        row.response = {"merged_into": digest_id}
        row.last_error = None
        row.next_attempt_at = None


async def erase_from_digests(session: AsyncSession, lead_ids: Collection[int]) -> int:
    """PIPL erasure (storage/repos/erasure.py), in the caller's transaction: the erased leads leave every digest
    row. A digest lists many leads and so has no lead_id: erasing by lead misses it.

    The leads' items go from the payload ("erased" counts them) and their titles ("name · company", as the card
    showed them) from every text of the payload, the card's list included, cut or not: each becomes "（已删除）".
    The card is built in bot/ (bot/handoff/cards.py), which storage may not import, so its texts are redacted,
    not rebuilt; the other leads' titles stay. A digest not yet sent and left without items is cancelled.
    Digests are matched by content, their method's rows scanned by id a page at a time, as erase_customers
    (storage/repos/transfers.py) does. How many rows changed."""
    leads = {int(i) for i in lead_ids}
    if not leads:
        return 0
    hits: list[int] = []
    after = 0
    while True:
        page = (await session.execute(
            select(OutboxMessage.id, OutboxMessage.payload).where(OutboxMessage.method == DIGEST_METHOD,
                                                                  OutboxMessage.id > after)
            .order_by(OutboxMessage.id).limit(_SCAN))).all()
        hits.extend(i for i, payload in page if _scrub_digest(payload or {}, leads)[1])
        if len(page) < _SCAN:
            break
        after = page[-1][0]
    if not hits:
        return 0
    # Re-read under the row lock: the sender (PostgreSQL) may be sending or merging the row meanwhile.
    stmt = select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.payload).where(
        OutboxMessage.id.in_(hits)).order_by(OutboxMessage.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    for row_id, status, payload in (await session.execute(stmt)).all():
        scrubbed, found = _scrub_digest(dict(payload or {}), leads)
        if not found:
            continue
        values: dict[str, Any] = {"payload": scrubbed}
        if not scrubbed.get("items") and status in ("pending", "sandboxed"):
            values.update(status="cancelled", last_error="the recipients' data was erased", next_attempt_at=None)
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))
    return len(hits)


def _scrub_digest(payload: dict[str, Any], leads: set[int]) -> tuple[dict[str, Any], bool]:
    """The digest payload without these leads' items and titles, and whether any of them was there."""
    items = payload.get("items")
    if not isinstance(items, list):
        return payload, False
    gone = [i for i in items if isinstance(i, dict) and _int(i.get("lead_id")) in leads]
    if not gone:
        return payload, False
    # Longest first: a title inside another one must not leave the longer one's rest behind.
    titles = sorted({t.removesuffix(_ELLIPSIS) for i in gone if isinstance(t := i.get("title"), str)} - {""},
                    key=len, reverse=True)
    rest = {k: v for k, v in payload.items() if k != "items"}
    out = _redact(rest, titles)
    out["items"] = [i for i in items if not any(i is g for g in gone)]
    out["erased"] = (_int(payload.get("erased")) or 0) + len(gone)  # the card still counts them
    return out, True


def _redact(value: Any, titles: list[str]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, titles)
    if isinstance(value, dict):
        return {k: _redact(v, titles) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, titles) for v in value]
    return value


def _redact_text(text: str, titles: list[str]) -> str:
    for title in titles:
        text = text.replace(title, REDACTED)
    if not text.endswith(_ELLIPSIS):
        return text
    # A list cut to WeCom's byte limit can end inside a title: its last line is then a title's beginning.
    head, newline, last = text[:-len(_ELLIPSIS)].rpartition("\n")
    lead_in = _LEAD_IN.match(last)
    start = lead_in.end() if lead_in else 0
    shown = last[start:]
    if shown and any(t.startswith(shown) for t in titles):
        return head + newline + last[:start] + REDACTED + _ELLIPSIS
    return text


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
