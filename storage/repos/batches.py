"""Batch messages to a segment: the SQL (bot/batches does the sending, leads/batches decides).

The audience of a batch is one SELECT over the segment's leads (storage/repos/lead_search.py ``filtered``)
that gives every lead its channel or its exclusion reason, in SQL: consent, the weekly frequency cap (journey
sends and batch sends of the last 7 days), the customer's WeCom receive limit for the period, the member WeCom
routes the customer through (the follow-up member on record, else the owner's WeCom userid), the OA OpenID.
Preview aggregates it; queueing inserts it into batch_recipients with INSERT ... SELECT. No per-lead round trip,
so a 100k-lead segment costs a few set-based statements (bench/batch_send.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leads.batches.reasons import (
    COUNTED,
    EXCLUDED,
    FREQUENCY_CAP,
    NO_OA_TEMPLATE,
    NO_WECOM,
    NOT_OA_FOLLOWER,
    OA,
    QUEUED,
    RECEIVE_LIMIT,
    SANDBOXED,
    UNSUBSCRIBED,
)
from leads.identity import OA_OPENID, WECOM_EXTERNAL
from leads.lead_filters import LeadFilter
from leads.lifecycle import UNSUBSCRIBED as UNSUBSCRIBED_STAGE
from storage.models import (
    Batch,
    BatchRecipient,
    BatchTask,
    Identity,
    JourneyStep,
    Lead,
    OutboxMessage,
    User,
)
from storage.repos import lead_work
from storage.repos.lead_search import filtered

SAMPLE_PER_REASON = 10


@dataclass(frozen=True, slots=True)
class AudienceRules:
    """What decides each lead's channel: the moment, the caps and limits, which channels the batch may use."""

    period_start: datetime  # the customer's receive-limit period began (leads/batches/limits.py)
    receive_limit: int
    week_ago: datetime
    caps: dict[str, int | None]  # "wecom" / "oa" -> sends allowed in 7 days (None: no cap)
    oa_template: bool  # an OA template is configured: OA followers can be reached
    channels: tuple[str, ...] = ("wecom", "oa")


def _first_identity(kind: str, name: str) -> tuple[Any, ColumnElement[bool]]:
    """The identities table aliased, and the join condition picking each lead's first identity of ``kind`` (one
    external_userid per lead, as the transfers pick it): "no earlier one of this kind" is an anti-join."""
    ident, earlier = aliased(Identity, name=name), aliased(Identity, name=f"{name}_earlier")
    first = ~select(earlier.id).where(earlier.lead_id == ident.lead_id, earlier.kind == kind,
                                      earlier.id < ident.id).exists()
    return ident, and_(ident.lead_id == Lead.id, ident.kind == kind, first)


def _count(column: Any, condition: ColumnElement[bool]) -> Any:
    return func.count(func.distinct(case((condition, column), else_=None)))


async def audience(session: AsyncSession, f: LeadFilter, owner_ids: list[int] | None,
                   rules: AudienceRules) -> Select[Any]:
    """(lead_id, reason, channel, member, external_userid, openid) for every lead of the segment in scope.

    Every join reaches a table by its lead_id index (the first identities, the recent batch and journey sends),
    grouped once by lead (0.17 s for 10k leads; joins to grouped derived tables became nested loops over them,
    minutes long, when the planner misjudged the row counts). Like every big query here it wants the planner's
    statistics: rows bulk-loaded a moment ago and not yet analysed (autovacuum does it soon) plan badly."""
    owner = aliased(User)
    euid, euid_on = _first_identity(WECOM_EXTERNAL, "euid")
    openid, openid_on = _first_identity(OA_OPENID, "openid")
    since = min(rules.period_start, rules.week_ago)
    br, js = BatchRecipient, JourneyStep
    member = func.coalesce(Lead.profile["wecom_owner"].as_string(), owner.wecom_userid)
    inner = (select(Lead.id.label("lead_id"), Lead.consent.label("consent"), Lead.stage.label("stage"),
                    member.label("member"), euid.value.label("external_userid"), openid.value.label("openid"),
                    _count(br.id, and_(br.channel == "wecom", br.created_at >= rules.period_start))
                    .label("period_wecom"),
                    (_count(br.id, and_(br.channel == "wecom", br.created_at >= rules.week_ago))
                     + _count(js.id, js.channel == "wecom")).label("week_wecom"),
                    (_count(br.id, and_(br.channel == "oa", br.created_at >= rules.week_ago))
                     + _count(js.id, js.channel == "oa")).label("week_oa"))
             .select_from(Lead).outerjoin(owner, owner.id == Lead.owner_user_id)
             .outerjoin(euid, euid_on).outerjoin(openid, openid_on)
             .outerjoin(br, and_(br.lead_id == Lead.id, br.created_at >= since, br.status.in_(COUNTED)))
             .outerjoin(js, and_(js.lead_id == Lead.id, js.at >= rules.week_ago, js.outcome == "sent"))
             .group_by(Lead.id, Lead.consent, Lead.stage, member, euid.value, openid.value))
    base = (await filtered(session, inner, f, owner_ids)).subquery("base")
    c = base.c
    wecom_ok = and_(c.external_userid.is_not(None), c.member.is_not(None)) if "wecom" in rules.channels \
        else false()
    oa_ok = c.openid.is_not(None) if "oa" in rules.channels else false()
    whens: list[tuple[ColumnElement[bool], str]] = [
        (or_(c.consent == "revoked", c.stage == UNSUBSCRIBED_STAGE), UNSUBSCRIBED)]
    if (cap := rules.caps.get("wecom")) is not None:
        whens.append((and_(wecom_ok, c.week_wecom >= cap), FREQUENCY_CAP))
    whens += [(and_(wecom_ok, c.period_wecom >= rules.receive_limit), RECEIVE_LIMIT), (wecom_ok, "")]
    if not rules.oa_template:
        whens.append((oa_ok, NO_OA_TEMPLATE))
    if (cap := rules.caps.get("oa")) is not None:
        whens.append((and_(oa_ok, c.week_oa >= cap), FREQUENCY_CAP))
    whens.append((oa_ok, ""))
    reason = case(*whens, else_=literal(NO_WECOM if "wecom" in rules.channels else NOT_OA_FOLLOWER))
    decided = select(c.lead_id, reason.label("reason"), case((wecom_ok, 1), else_=0).label("wecom_ok"), c.member,
                     c.external_userid, c.openid).subquery("audience")
    channel = case((decided.c.reason != "", literal("")), (decided.c.wecom_ok == 1, literal("wecom")),
                   else_=literal("oa"))
    return select(decided.c.lead_id, decided.c.reason, channel.label("channel"),
                  case((channel == "wecom", decided.c.member), else_=None).label("member"),
                  case((channel == "wecom", decided.c.external_userid), else_=None).label("external_userid"),
                  case((channel == "oa", decided.c.openid), else_=None).label("openid"))


@dataclass
class Preview:
    total: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)  # wecom / oa -> recipients
    by_reason: dict[str, int] = field(default_factory=dict)  # exclusion reason -> leads
    by_member: dict[str, int] = field(default_factory=dict)  # WeCom member -> customers
    samples: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # reason -> (lead, name)


async def preview(session: AsyncSession, stmt: Select[Any]) -> Preview:
    """Counts of the audience (one GROUP BY) and the first few excluded leads of each reason (one window)."""
    aud = stmt.subquery("aud")
    out = Preview()
    grouped = select(aud.c.reason, aud.c.channel, aud.c.member, func.count()).group_by(
        aud.c.reason, aud.c.channel, aud.c.member)
    for reason, channel, member, n in (await session.execute(grouped)).all():
        out.total += n
        if reason:
            out.by_reason[reason] = out.by_reason.get(reason, 0) + n
            continue
        out.by_channel[channel] = out.by_channel.get(channel, 0) + n
        if channel == "wecom":
            out.by_member[member] = out.by_member.get(member, 0) + n
    if out.by_reason:
        rank = func.row_number().over(partition_by=aud.c.reason, order_by=aud.c.lead_id).label("rank")
        ranked = select(aud.c.lead_id, aud.c.reason, rank).where(aud.c.reason != "").subquery("ranked")
        rows = await session.execute(
            select(ranked.c.reason, ranked.c.lead_id, Lead.display_name).join(Lead, Lead.id == ranked.c.lead_id)
            .where(ranked.c.rank <= SAMPLE_PER_REASON).order_by(ranked.c.reason, ranked.c.lead_id))
        for reason, lead_id, name in rows.all():
            out.samples.setdefault(reason, []).append((lead_id, name))
    return out


async def add_batch(session: AsyncSession, segment_id: int, user_id: int | None, message: dict[str, Any],
                    sandbox: bool, at: datetime) -> Batch:
    batch = Batch(segment_id=segment_id, created_by_user_id=user_id, message=message, sandbox=sandbox, status="queued",
                  counts={}, created_at=at)
    session.add(batch)
    await session.flush()
    return batch


async def insert_recipients(session: AsyncSession, batch_id: int, stmt: Select[Any], *, sandbox: bool,
                            at: datetime) -> None:
    """The whole audience into batch_recipients in one INSERT ... SELECT (excluded leads too, with the reason:
    the batch's report and each lead's timeline say why nothing was sent)."""
    aud = stmt.subquery("aud")
    status = case((aud.c.reason != "", literal(EXCLUDED)),
                  (and_(aud.c.channel == "wecom", literal(sandbox)), literal(SANDBOXED)), else_=literal(QUEUED))
    cols = ["batch_id", "lead_id", "channel", "status", "reason", "member_userid", "external_userid", "openid",
            "created_at", "updated_at"]
    source = select(literal(batch_id, Integer), aud.c.lead_id, aud.c.channel, status, aud.c.reason, aud.c.member,
                    aud.c.external_userid, aud.c.openid, literal(at, BatchRecipient.created_at.type),
                    literal(at, BatchRecipient.updated_at.type))
    await session.execute(insert(BatchRecipient).from_select(cols, source))


async def counts_of(session: AsyncSession, batch_id: int) -> dict[str, dict[str, int]]:
    """{"channel": {...}, "reason": {...}, "status": {...}} of a batch's recipients."""
    rows = await session.execute(
        select(BatchRecipient.channel, BatchRecipient.reason, BatchRecipient.status, func.count())
        .where(BatchRecipient.batch_id == batch_id)
        .group_by(BatchRecipient.channel, BatchRecipient.reason, BatchRecipient.status))
    out: dict[str, dict[str, int]] = {"channel": {}, "reason": {}, "status": {}}
    for channel, reason, status, n in rows.all():
        for key, value in (("channel", channel), ("reason", reason), ("status", status)):
            if value:
                out[key][value] = out[key].get(value, 0) + n
    return out


async def wecom_recipients(session: AsyncSession, batch_id: int) -> list[tuple[int, str, str]]:
    """(recipient id, member, external_userid) of the batch's WeCom recipients, by member then id."""
    rows = await session.execute(
        select(BatchRecipient.id, BatchRecipient.member_userid, BatchRecipient.external_userid)
        .where(BatchRecipient.batch_id == batch_id, BatchRecipient.channel == "wecom",
               BatchRecipient.status != EXCLUDED)
        .order_by(BatchRecipient.member_userid, BatchRecipient.id))
    return [(i, str(m), str(e)) for i, m, e in rows.all()]


async def add_task(session: AsyncSession, batch_id: int, member: str, chunk: int, ids: Sequence[int],
                   *, status: str, at: datetime) -> BatchTask:
    """A WeCom task for one chunk, and its recipients pointed at it (their ids are contiguous in member order:
    one UPDATE over the id range, no per-recipient statement)."""
    task = BatchTask(batch_id=batch_id, member_userid=member, chunk=chunk, recipients=len(ids), status=status,
                     reminders=[], created_at=at, next_check_at=at)
    session.add(task)
    await session.flush()
    await session.execute(update(BatchRecipient).where(
        BatchRecipient.batch_id == batch_id, BatchRecipient.member_userid == member,
        BatchRecipient.channel == "wecom", BatchRecipient.id >= min(ids), BatchRecipient.id <= max(ids))
        .values(task_id=task.id))
    return task


async def member_names(session: AsyncSession, wecom_userids: Sequence[str]) -> dict[str, str]:
    if not wecom_userids:
        return {}
    rows = await session.execute(select(User.wecom_userid, User.display_name, User.username)
                                 .where(User.wecom_userid.in_(sorted(set(wecom_userids)))))
    return {str(w): d or u for w, d, u in rows.all()}


async def set_counts(session: AsyncSession, batch_id: int, counts: dict[str, Any]) -> None:
    await session.execute(update(Batch).where(Batch.id == batch_id).values(counts=counts))


async def get_batch(session: AsyncSession, batch_id: int) -> Batch | None:
    return await session.get(Batch, batch_id)


async def tasks_of(session: AsyncSession, batch_id: int) -> list[BatchTask]:
    stmt = select(BatchTask).where(BatchTask.batch_id == batch_id).order_by(BatchTask.id)
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True, slots=True)
class RecipientRow:
    recipient: BatchRecipient
    display_name: str | None
    outbox_status: str | None  # an OA recipient's template message


async def recipients_page(session: AsyncSession, batch_id: int, after: int, limit: int) -> list[RecipientRow]:
    """Recipients after id ``after`` (a keyset page), with the lead's name and an OA message's status."""
    stmt = (select(BatchRecipient, Lead.display_name, OutboxMessage.status)
            .join(Lead, Lead.id == BatchRecipient.lead_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchRecipient.outbox_id)
            .where(BatchRecipient.batch_id == batch_id, BatchRecipient.id > after)
            .order_by(BatchRecipient.id).limit(limit))
    return [RecipientRow(r, name, status) for r, name, status in (await session.execute(stmt)).all()]


async def oa_pending(session: AsyncSession, limit: int) -> list[tuple[BatchRecipient, Batch, Lead, str | None]]:
    """OA recipients not yet handed to the outbox (oldest batch first), with their batch, lead and owner's name."""
    owner = aliased(User)
    stmt = (select(BatchRecipient, Batch, Lead, func.coalesce(func.nullif(owner.display_name, ""), owner.username))
            .join(Batch, Batch.id == BatchRecipient.batch_id).join(Lead, Lead.id == BatchRecipient.lead_id)
            .outerjoin(owner, owner.id == Lead.owner_user_id)
            .where(Batch.status == "queued", BatchRecipient.channel == "oa", BatchRecipient.status == QUEUED)
            .order_by(BatchRecipient.id).limit(limit))
    return [(r, b, lead, name) for r, b, lead, name in (await session.execute(stmt)).all()]


async def mark_oa(session: AsyncSession, recipient_id: int, outbox_id: int | None, at: datetime) -> None:
    """The recipient's template message is in the outbox (its row's status is the outcome from now on)."""
    await session.execute(update(BatchRecipient).where(BatchRecipient.id == recipient_id)
                          .values(status=OA, outbox_id=outbox_id, updated_at=at))


async def finish_fanned_out(session: AsyncSession) -> int:
    """Batches whose OA recipients are all handed over are "sent"; how many."""
    pending = select(BatchRecipient.id).where(BatchRecipient.batch_id == Batch.id, BatchRecipient.channel == "oa",
                                              BatchRecipient.status == QUEUED).exists()
    result = await session.execute(update(Batch).where(Batch.status == "queued", ~pending).values(status="sent"))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- collecting results (bot/batches/collect.py) ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DueTask:
    task: BatchTask
    batch: Batch
    outbox_status: str | None
    outbox_response: dict[str, Any] | None


async def due_tasks(session: AsyncSession, now: datetime, limit: int) -> list[DueTask]:
    """Tasks to look at now: queued (is the call made?) or waiting (has the member sent?), due first."""
    stmt = (select(BatchTask, Batch, OutboxMessage.status, OutboxMessage.response)
            .join(Batch, Batch.id == BatchTask.batch_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchTask.outbox_id)
            .where(BatchTask.status.in_(("queued", "waiting")), BatchTask.next_check_at <= now)
            .order_by(BatchTask.next_check_at, BatchTask.id).limit(limit))
    return [DueTask(t, b, s, dict(r) if r else None) for t, b, s, r in (await session.execute(stmt)).all()]


async def lock_task(session: AsyncSession, task_id: int) -> BatchTask | None:
    """The task read afresh under its row lock (PostgreSQL): two passes never apply the same results twice."""
    stmt = select(BatchTask).where(BatchTask.id == task_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_recipient_status(session: AsyncSession, task_id: int, external_userids: Sequence[str], status: str,
                               at: datetime, *, only: Sequence[str] = (), errcode: int | None = None) -> None:
    """One status for these customers of a task (IN lists of ≤ 1,000: a page of WeCom's results)."""
    ids = list(external_userids)
    for i in range(0, len(ids), 1000):
        stmt = update(BatchRecipient).where(BatchRecipient.task_id == task_id,
                                            BatchRecipient.external_userid.in_(ids[i:i + 1000]))
        if only:
            stmt = stmt.where(BatchRecipient.status.in_(only))
        await session.execute(stmt.values(status=status, errcode=errcode, updated_at=at))


async def set_task_recipients(session: AsyncSession, task_id: int, status: str, at: datetime, *,
                              only: Sequence[str], errcode: int | None = None) -> None:
    """Every recipient of the task still in one of ``only`` gets ``status``."""
    await session.execute(update(BatchRecipient).where(BatchRecipient.task_id == task_id,
                                                       BatchRecipient.status.in_(only))
                          .values(status=status, errcode=errcode, updated_at=at))


async def first_lead_of(session: AsyncSession, task_id: int, statuses: Sequence[str]) -> tuple[int | None, int]:
    """The task's first lead still in ``statuses``, and how many are."""
    stmt = (select(func.min(BatchRecipient.lead_id), func.count())
            .where(BatchRecipient.task_id == task_id, BatchRecipient.status.in_(statuses)))
    lead_id, n = (await session.execute(stmt)).one()
    return lead_id, int(n)


async def add_sdr_task(session: AsyncSession, lead_id: int, title: str, assignee: int | None, at: datetime) -> int:
    """The fallback: an open task on the lead for the batch's creator (the lead's 360 and start page show it)."""
    task = await lead_work.add_task(session, lead_id, title[:200], due_at=at, assignee_user_id=assignee,
                          created_by_user_id=None, now=at)
    return task.id


# ---- a lead's timeline (storage/repos/timeline.py) ----------------------------------------------------------

async def timeline_rows(session: AsyncSession, lead_id: int, condition: Any,
                        take: int) -> list[tuple[BatchRecipient, dict[str, Any], str | None, str | None]]:
    """The lead's batch recipients (newest first): with the batch's message, its sender's name, and an OA
    recipient's outbox status."""
    author = func.coalesce(func.nullif(User.display_name, ""), User.username)
    stmt = (select(BatchRecipient, Batch.message, author, OutboxMessage.status)
            .join(Batch, Batch.id == BatchRecipient.batch_id)
            .outerjoin(User, User.id == Batch.created_by_user_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchRecipient.outbox_id)
            .where(BatchRecipient.lead_id == lead_id))
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(BatchRecipient.created_at.desc(), BatchRecipient.id.desc()).limit(take)
    return [(r, dict(m or {}), a, s) for r, m, a, s in (await session.execute(stmt)).all()]


# ---- erasure (to be called by storage/repos/erasure.py erase_lead, beside erase_customers) ---------------------

async def erase_recipients(session: AsyncSession, lead_ids: Sequence[int], external_userids: Sequence[str]) -> int:
    """PIPL erasure, in the caller's transaction: the erased people's external_userid and OpenID leave their
    recipient rows (the outcome stays, anonymous) and the WeCom task calls (outbox payloads and answers) that
    listed them; a task call not yet made and left empty is cancelled. How many task calls changed."""
    ids, euids = sorted({int(i) for i in lead_ids}), set(external_userids)
    if not ids:
        return 0
    rows = (await session.execute(select(BatchRecipient.task_id, BatchRecipient.external_userid)
                                  .where(BatchRecipient.lead_id.in_(ids), BatchRecipient.task_id.is_not(None)))).all()
    euids |= {e for _, e in rows if e}
    task_ids = sorted({t for t, _ in rows if t is not None})
    await session.execute(update(BatchRecipient).where(BatchRecipient.lead_id.in_(ids))
                          .values(external_userid=None, openid=None))
    if not task_ids:
        return 0
    outbox_ids = list((await session.execute(select(BatchTask.outbox_id).where(
        BatchTask.id.in_(task_ids), BatchTask.outbox_id.is_not(None)))).scalars())
    stmt = select(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
    if session.get_bind().dialect.name == "postgresql":  # the sender rewrites a row's response under this lock
        stmt = stmt.with_for_update()
    changed = 0
    for row in (await session.execute(stmt)).scalars():
        payload = dict(row.payload or {})
        kept = [e for e in payload.get("external_userid") or [] if e not in euids]
        values: dict[str, Any] = {"payload": {**payload, "external_userid": kept}}
        if row.response and isinstance(row.response.get("fail_list"), list):
            values["response"] = {**row.response, "fail_list": [e for e in row.response["fail_list"]
                                                                if e not in euids]}
        if not kept and row.status in ("pending", "sandboxed"):
            values.update(status="cancelled", last_error="the customers' data was erased")
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
        changed += 1
    return changed
