"""The console's lead list in SQL: a LeadFilter (leads/lead_filters.py) as WHERE clauses, its sort, a page of it
and a capped count. Shared by the list (``lead_page``) and the CSV export (storage/repos/lead_export.py).

Written for PostgreSQL with a million leads: every filter is a plain predicate on ``leads`` or an EXISTS on a
table keyed by lead, the name/company fragment is ``ILIKE '%frag%'`` on exactly ``leads.display_name`` and
``(leads.profile ->> 'company')`` (the pg_trgm GIN indexes of migration 0008 are built on those expressions),
a fragment shorter than MIN_INFIX (no trigram) matches from the start (``LIKE 'frag%'``, served by the
text_pattern_ops indexes of migration 0009), the scores are read from their copy on the lead row (migration
0009: one index serves "quadrant X, newest activity first"), and a count stops at COUNT_CAP + 1 rows instead
of counting them all on every page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import EMAIL, PHONE
from leads.lead_filters import COUNT_CAP, MIN_INFIX, PHONE_LAST4, TEXT, LeadFilter, like_pattern
from leads.lead_filters import EMAIL as SEARCH_EMAIL
from storage.models import Identity, Lead, LeadTag, TeamMember, Touchpoint, User

# A fragment shaped like a machine identifier (an OpenID, an external user id) may also be one exactly.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_\-]{6,128}")
_IDENTIFIER_HITS = 100


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def company_expr(dialect: str) -> ColumnElement[Any]:
    """``profile ->> 'company'`` spelled with a literal key on PostgreSQL, so it is the indexed expression."""
    if dialect == "postgresql":
        return Lead.profile.op("->>", return_type=String())(literal_column("'company'"))
    return func.json_extract(Lead.profile, "$.company")


def live() -> ColumnElement[bool]:
    return and_(Lead.merged_into_id.is_(None), Lead.erased_at.is_(None))


async def _identifier_leads(session: AsyncSession, fragment: str) -> list[int]:
    """Leads holding this exact identity value (the list's search always found leads by their OpenID)."""
    if not _IDENTIFIER.fullmatch(fragment):
        return []
    stmt = select(Identity.lead_id).where(Identity.value == fragment).limit(_IDENTIFIER_HITS)
    return list((await session.execute(stmt)).scalars())


async def _search_clause(session: AsyncSession, f: LeadFilter, dialect: str) -> ColumnElement[bool] | None:
    search = f.search
    if search is None:
        return None
    if search.kind == TEXT:
        pattern = like_pattern(search.value)
        if len(search.value) >= MIN_INFIX:
            clauses = [Lead.display_name.ilike(pattern, escape="\\"),
                       company_expr(dialect).ilike(pattern, escape="\\")]
        else:  # LIKE, not ILIKE: a btree (text_pattern_ops) serves a prefix only case-sensitively
            clauses = [Lead.display_name.like(pattern, escape="\\"), company_expr(dialect).like(pattern, escape="\\")]
        if ids := await _identifier_leads(session, search.value):
            clauses.append(Lead.id.in_(ids))
        return or_(*clauses)
    if search.kind == PHONE_LAST4:
        owners = select(Identity.lead_id).where(Identity.kind == PHONE, Identity.app == "",
                                                Identity.value.like(f"%{search.value}"))
    else:
        kind = EMAIL if search.kind == SEARCH_EMAIL else PHONE
        owners = select(Identity.lead_id).where(Identity.kind == kind, Identity.app == "",
                                                Identity.value == search.value)
    return Lead.id.in_(owners)


def _filter_clauses(f: LeadFilter, owner_ids: list[int] | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [live()]
    if owner_ids is not None:  # the caller's scope (sdr_console/api/scoping.py): never widened by a filter
        where.append(Lead.owner_user_id.in_(owner_ids))
    if f.stages:
        where.append(Lead.stage.in_(f.stages))
    if f.consents:
        where.append(Lead.consent.in_(f.consents))
    if f.quadrants:
        where.append(Lead.quadrant.in_(f.quadrants))
    for column, low, high in ((Lead.ability, f.ability_min, f.ability_max),
                              (Lead.motivation, f.motivation_min, f.motivation_max)):
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column <= high)
    if f.channel is not None:
        where.append(exists().where(Touchpoint.lead_id == Lead.id, Touchpoint.channel == f.channel))
    if f.scene is not None:
        where.append(exists().where(Touchpoint.lead_id == Lead.id, Touchpoint.scene == f.scene))
    if f.pool:
        where.append(Lead.owner_user_id.is_(None))
    elif f.owner_id is not None:
        where.append(Lead.owner_user_id == f.owner_id)
    if f.team_id is not None:
        where.append(Lead.owner_user_id.in_(select(TeamMember.user_id).where(TeamMember.team_id == f.team_id)))
    if f.tag is not None:
        where.append(exists().where(LeadTag.lead_id == Lead.id, LeadTag.tag == f.tag))
    for column, start, end in ((Lead.created_at, f.created_from, f.created_before),
                               (Lead.last_activity_at, f.active_from, f.active_before)):
        if start is not None:
            where.append(column >= start)
        if end is not None:
            where.append(column < end)
    return where


async def filtered(session: AsyncSession, stmt: Select[Any], f: LeadFilter,
                   owner_ids: list[int] | None) -> Select[Any]:
    """``stmt`` (selecting from leads) restricted to the filter."""
    dialect = dialect_of(session)
    stmt = stmt.where(*_filter_clauses(f, owner_ids))
    if (clause := await _search_clause(session, f, dialect)) is not None:
        stmt = stmt.where(clause)
    return stmt


_SORT_COLUMNS: dict[str, Any] = {
    "last_activity_at": Lead.last_activity_at, "created_at": Lead.created_at, "display_name": Lead.display_name,
    "stage": Lead.stage, "ability": Lead.ability, "motivation": Lead.motivation,
}
_NULLABLE = {"display_name", "ability", "motivation"}


def ordered(stmt: Select[Any], f: LeadFilter) -> Select[Any]:
    """The filter's sort, ties broken by id in the same direction (a stable order for pages)."""
    column = _SORT_COLUMNS[f.sort]
    desc = f.order == "desc"
    key = column.desc() if desc else column.asc()
    if f.sort in _NULLABLE:  # unscored or unnamed leads last either way; non-null columns keep the plain index
        key = key.nulls_last()
    return stmt.order_by(key, Lead.id.desc() if desc else Lead.id.asc())


@dataclass(frozen=True, slots=True)
class ListedLead:
    lead: Lead
    ability: float | None
    motivation: float | None
    quadrant: str | None
    owner_name: str | None = None
    phone: str | None = None  # in full: the caller masks it
    tags: tuple[str, ...] = ()


async def lead_page(session: AsyncSession, f: LeadFilter, owner_ids: list[int] | None, limit: int,
                    offset: int) -> tuple[list[ListedLead], bool]:
    """One page of the list and whether more follow (one row more is read rather than counting)."""
    stmt = ordered(await filtered(session, select(Lead), f, owner_ids), f)
    rows = list((await session.execute(stmt.limit(limit + 1).offset(offset))).scalars())
    page = rows[:limit]
    ids = [lead.id for lead in page]
    owners = {lead.owner_user_id for lead in page if lead.owner_user_id is not None}
    names, phones, tags = (await _owner_names(session, owners), await phones_of(session, ids),
                           await tags_of(session, ids))
    listed = [ListedLead(lead, lead.ability, lead.motivation, lead.quadrant, names.get(lead.owner_user_id or 0),
                         phones.get(lead.id), tuple(tags.get(lead.id, ())))
              for lead in page]
    return listed, len(rows) > limit


async def count_capped(session: AsyncSession, f: LeadFilter, owner_ids: list[int] | None,
                       cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(matches, capped): counting stops after ``cap`` + 1 rows, so a broad filter costs no full count."""
    inner = (await filtered(session, select(Lead.id), f, owner_ids)).limit(cap + 1).subquery()
    found = int((await session.execute(select(func.count()).select_from(inner))).scalar_one())
    return min(found, cap), found > cap


async def _owner_names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(user_ids)))
    return {uid: display or username for uid, display, username in rows.all()}


def _among(column: Any, ids: list[int], dialect: str) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``) instead of one parameter per id: an
    export asks for 2,000 ids a batch, and compiling and planning 2,000 parameters cost more than the lookup."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    return column.in_(ids)


async def phones_of(session: AsyncSession, lead_ids: list[int]) -> dict[int, str]:
    """Each lead's phone number: a WeChat-verified one first, else the oldest typed one."""
    if not lead_ids:
        return {}
    rows = await session.execute(
        select(Identity.lead_id, Identity.value)
        .where(_among(Identity.lead_id, lead_ids, dialect_of(session)), Identity.kind == PHONE)
        .order_by(Identity.verified.desc(), Identity.id))
    found: dict[int, str] = {}
    for lead_id, value in rows.all():
        found.setdefault(lead_id, value)
    return found


async def tags_of(session: AsyncSession, lead_ids: list[int]) -> dict[int, list[str]]:
    if not lead_ids:
        return {}
    rows = await session.execute(select(LeadTag.lead_id, LeadTag.tag)
                                 .where(_among(LeadTag.lead_id, lead_ids, dialect_of(session)))
                                 .order_by(LeadTag.lead_id, LeadTag.tag))
    found: dict[int, list[str]] = {}
    for lead_id, tag in rows.all():
        found.setdefault(lead_id, []).append(tag)
    return found
