"""SQLAlchemy models. Alembic migrations in storage/migrations create and evolve these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# An identity value holds the longest valid email address (254 characters, RFC 5321) with room to spare.
IDENTITY_VALUE_LEN = 320


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Lead(Base):
    __tablename__ = "leads"
    # The console list's indexes on leads (trigram search, partial "live lead" indexes) exist on PostgreSQL
    # only: migration 0008, POSTGRESQL_ONLY_INDEXES.

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(32), default="lead")
    consent: Mapped[str] = mapped_column(String(16), default="unknown")
    consent_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id"))
    # The user's last own action in the OA (message, click, follow, scan): customer-service messages are
    # allowed for 48 h after it.
    oa_last_interaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The user the lead is assigned to (a salesperson after hand-off); None while it is in the pool.
    owner_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    # A copy of the lead's stored scores (lead_scores), kept by a database trigger on every write to lead_scores
    # (migration 0009): the console list filters and sorts by them beside stage and last activity, which an
    # index can serve only when they are on the same row. lead_scores is the record: only the
    # batch of plain events (storage/repos/activity_batch.py) writes the copy itself, with the values the trigger
    # is about to write, so that the trigger leaves the row alone.
    quadrant: Mapped[str | None] = mapped_column(String(20))
    ability: Mapped[float | None] = mapped_column(Float)
    motivation: Mapped[float | None] = mapped_column(Float)


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "app", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    app: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(String(IDENTITY_VALUE_LEN))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Touchpoint(Base):
    __tablename__ = "touchpoints"
    # One touchpoint of a kind per inbox row: a reprocessed event cannot count twice.
    __table_args__ = (
        UniqueConstraint("inbox_id", "kind"),
        Index("ix_touchpoints_lead_id_occurred_at", "lead_id", "occurred_at"),
        # The console's "has a touchpoint in this channel / scene" filters (EXISTS ... per lead).
        Index("ix_touchpoints_channel_lead_id", "channel", "lead_id"),
        Index("ix_touchpoints_scene_lead_id", "scene", "lead_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    kind: Mapped[str] = mapped_column(String(40))
    scene: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(100))
    source_code: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    inbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LeadTag(Base):
    __tablename__ = "lead_tags"
    __table_args__ = (Index("ix_lead_tags_tag_lead_id", "tag", "lead_id"),)  # the console's tag filter

    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeadMerge(Base):
    __tablename__ = "lead_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survivor_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    merged_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    identity_kind: Mapped[str] = mapped_column(String(24))
    identity_value: Mapped[str] = mapped_column(String(IDENTITY_VALUE_LEN))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MergeConflict(Base):
    __tablename__ = "merge_conflicts"
    __table_args__ = (UniqueConstraint("lead_id", "other_lead_id", "identity_kind", "identity_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    other_lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    identity_kind: Mapped[str] = mapped_column(String(24))
    identity_value: Mapped[str] = mapped_column(String(IDENTITY_VALUE_LEN))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    inbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DuplicateSuggestion(Base):
    """A weak identity (typed phone or email) matched another lead: a person decides whether to merge."""

    __tablename__ = "duplicate_suggestions"
    __table_args__ = (UniqueConstraint("lead_id", "other_lead_id", "identity_kind", "identity_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)  # the submitter's lead
    other_lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)  # owns the identity
    identity_kind: Mapped[str] = mapped_column(String(24))
    identity_value: Mapped[str] = mapped_column(String(IDENTITY_VALUE_LEN))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open, merged, dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str] = mapped_column(String(100), default="")


class IdentityTombstone(Base):
    """An erased identity, kept only as a keyed hash: enough to recognise it, never to read it back."""

    __tablename__ = "identity_tombstones"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubmissionKey(Base):
    """An idempotency key of a stored submission: a retry with the same key is answered, not stored twice."""

    __tablename__ = "submission_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InboxEvent(Base):
    """Every accepted callback, written before WeChat gets its answer."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status_id", "status", "id"),
        # One person's events are handled in order: "is an earlier one of theirs still pending?"
        Index("ix_inbox_source_from_user_status", "source", "from_user", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(8))
    dedup_key: Mapped[str] = mapped_column(String(400), unique=True)
    msg_type: Mapped[str] = mapped_column(String(40))
    event: Mapped[str | None] = mapped_column(String(60))
    from_user: Mapped[str] = mapped_column(String(128))  # the actor: FromUserName, or the WeCom customer
    create_time: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """Outbound WeChat / WeCom calls: recorded here, sent (live) or only kept (sandbox)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_lead_id_created_at", "lead_id", "created_at"),  # a lead's timeline, by time
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    target: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    # The person who sent it from the console (a hand-off reply); None for the bot's own messages.
    author_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))


class Handoff(Base):
    """A conversation the bot could not answer, waiting for an SDR (shown in the console)."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Claimed by an SDR (one person answers a question), closed by the reply that answered it.
    claimed_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reply_outbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbox.id"))


class ContentItemRow(Base):
    """The content library: loaded from config, a file or the API; replies link to it through /c/<token>."""

    __tablename__ = "content_items"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    cover: Mapped[str] = mapped_column(String(500), default="")
    url: Mapped[str] = mapped_column(String(1000))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    stage: Mapped[str] = mapped_column(String(20))
    key: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MiniProgramSession(Base):
    """A mini-program login. The session_key stays here: clients only ever see the opaque token."""

    __tablename__ = "mp_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    openid: Mapped[str] = mapped_column(String(128))
    session_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeadScore(Base):
    """A lead's stored scores: exact when written, kept fresh by the scheduled refresh (decay) for filtering.

    ``state`` is the scoring model's MotivationState: the next touchpoint is applied to it without reading
    the lead's history again. ``rules`` is the fingerprint of the rules it was built with; another
    fingerprint means the state is rebuilt from the touchpoints.
    """

    __tablename__ = "lead_scores"
    # Migration 0009's triggers copy ability/motivation/quadrant onto the lead row. A later migration that
    # rebuilds this table on SQLite (batch_alter_table) drops them: it must create them again.
    __table_args__ = (  # the console's quadrant and ability/motivation filters (read without the rows)
        Index("ix_lead_scores_quadrant_lead_id", "quadrant", "lead_id"),
        Index("ix_lead_scores_ability_motivation", "ability", "motivation"),
    )

    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), primary_key=True)
    ability: Mapped[float] = mapped_column(Float)
    motivation: Mapped[float] = mapped_column(Float, index=True)
    quadrant: Mapped[str] = mapped_column(String(20), index=True)
    rules: Mapped[str] = mapped_column(String(16))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StageTransition(Base):
    """Every lifecycle stage change: who (system rule, SDR, salesperson), why and when."""

    __tablename__ = "stage_transitions"
    __table_args__ = (Index("ix_stage_transitions_lead_id_id", "lead_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    from_stage: Mapped[str] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text)
    touchpoint_id: Mapped[int | None] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScoreRecomputeRun(Base):
    """``leadrelay scores recompute``: its progress, so an interrupted run resumes where it stopped."""

    __tablename__ = "score_recompute_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rules: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")
    last_lead_id: Mapped[int] = mapped_column(BigInteger, default=0)
    leads_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    score_changes: Mapped[int] = mapped_column(BigInteger, default=0)
    quadrant_changes: Mapped[int] = mapped_column(BigInteger, default=0)
    stage_changes: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    """A person who signs in to the console or calls the API. Disabled users keep their rows for the audit log."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16))  # leads.access.ROLES
    password_hash: Mapped[str] = mapped_column(String(200))
    wecom_userid: Mapped[str | None] = mapped_column(String(64))
    # How hand-off pushes reach the member's WeCom client: "template_card" (buttons 接受 / 退回) or "textcard"
    # (older clients that cannot show template cards: a link to the mobile inbox).
    card_style: Mapped[str] = mapped_column(String(16), default="template_card", server_default="template_card")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class TeamMember(Base):
    """A user in a team; routing skips members who are away or at capacity (0 = unlimited).

    ``capacity`` caps the MQLs routed to the member per day (China time) and ``monthly_cap`` over 30 days;
    ``weight`` is the member's share of the team's MQLs (0: derived from the capacity, see leads/routing.py).
    ``virtual_time`` is the member's standing in the team's round robin (MQLs given / weight, see
    leads/routing.py), written only by the routing that picks them, under their row lock; ``last_assigned_at``
    breaks ties (longest waiting first, never id order).
    """

    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(BigId, ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True, index=True)
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    monthly_cap: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    weight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    virtual_time: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Assignment(Base):
    """One routing of a lead to a salesperson: who, by which rule, and what became of it.

    ``status``: pending (pushed, waiting for 接受 / 退回), accepted, returned, or superseded (reassigned by hand,
    by the SLA or because the member was disabled: the next assignment's ``previous_id`` points here). At most
    one pending assignment per lead (a partial unique index): two processes routing the same MQL cannot both
    win. ``sla_step``: 0 none yet, 1 reminded, 2 reassigned, 3 escalated. ``card_code``: WeCom's response_code
    of the pushed template card, which update_template_card needs to show the outcome on it.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        Index("uq_assignments_pending_lead", "lead_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
        Index("ix_assignments_user_status_assigned_at", "user_id", "status", "assigned_at"),
        Index("ix_assignments_lead_id_id", "lead_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("teams.id"))
    rule: Mapped[str] = mapped_column(String(120))  # "routing.rules[2]", "routing.default_owner", "manual", ...
    reason: Mapped[str] = mapped_column(Text, default="")  # why, in Chinese, for the timeline
    status: Mapped[str] = mapped_column(String(16), default="pending")
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    assigned_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # a manual reassignment
    previous_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("assignments.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    return_reason: Mapped[str | None] = mapped_column(String(40))
    return_text: Mapped[str | None] = mapped_column(Text)
    sla_step: Mapped[int] = mapped_column(Integer, default=0)
    card_code: Mapped[str | None] = mapped_column(String(128))


class AssignmentEvent(Base):
    """A step of a lead's hand-off, for its timeline: assigned, pushed, reminded, escalated, accepted, returned,
    card_updated (reassignments are new assignments: "assigned" with the previous one in ``detail``)."""

    __tablename__ = "assignment_events"
    __table_args__ = (Index("ix_assignment_events_lead_id_at", "lead_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("assignments.id"), index=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: the system
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # no personal data: ids, rule, reason


class WebhookAttempt(Base):
    """One try at delivering a CRM webhook (an outbox row of target "crm"): the delivery log admins read."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no HTTP answer (timeout, refused)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class SlaTimer(Base):
    """APScheduler's SQLAlchemy job store table for the hand-off SLA timers (bot/handoff/sla_scheduler.py).

    Declared here (and created by migration 0010) so the schema stays the migrations' alone: the job store finds
    the table existing. The columns are APScheduler 3's own (apscheduler/jobstores/sqlalchemy.py).
    """

    __tablename__ = "sla_timers"

    id: Mapped[str] = mapped_column(String(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class ApiToken(Base):
    """A per-user API token: only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Who did what, when, to what, with the state before and after; refusals too (outcome "denied")."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target_kind_target_id", "target_kind", "target_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(64))  # the username, "service-token" or "cli"
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | denied


class LeadNote(Base):
    """A note a person wrote on a lead (the 360). The body is stored verbatim; the erasure blanks it."""

    __tablename__ = "lead_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: a service token
    author_label: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # at most 5000 characters, checked by the API
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeadTask(Base):
    """A to-do on a lead, optionally due and assigned: open until someone marks it done."""

    __tablename__ = "lead_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assignee_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open | done
    created_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: a service token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When its due-time reminder went to the assignee's WeCom (None: not yet, or nothing to remind).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SavedFilter(Base):
    """A user's named lead-list filter (the list's query parameters); later a segment for batch sends."""

    __tablename__ = "saved_filters"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JourneyEnrolment(Base):
    """A lead's way through one nurture journey (leads/journeys): where it stands and when its next step is due.

    At most one active enrolment per (journey, lead), by a partial unique index: a lead enrolled twice at once
    by two processes is scheduled once. ``seq`` counts the steps recorded in journey_steps; the executor writes
    step ``seq + 1`` and moves ``seq`` in one transaction, so a step is recorded (and its message queued) once.
    ``version``: the journey definition's fingerprint at enrolment; an edited journey ends the enrolment.
    """

    __tablename__ = "journey_enrolments"
    __table_args__ = (
        Index("uq_journey_enrolments_active", "journey_id", "lead_id", unique=True,
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
        Index("ix_journey_enrolments_due", "due_at",
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
        Index("ix_journey_enrolments_journey_id_status", "journey_id", "status"),
        Index("ix_journey_enrolments_lead_id", "lead_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    version: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(120), default="")  # what enrolled it: "quadrant:nurture", ...
    position: Mapped[str] = mapped_column(String(200), default="0")  # "2.yes.0": leads.journeys.machine.Position
    seq: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="active")  # active | done | exited
    reason: Mapped[str] = mapped_column(String(64), default="")  # why it ended ("completed", "stage:sal", ...)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None once ended
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed tries of the current step
    last_error: Mapped[str | None] = mapped_column(Text)


class JourneyStep(Base):
    """What happened at one step of an enrolment: entered, waited, an action sent / skipped / deferred / failed,
    done or exited, with the reason. (enrolment_id, seq) is unique: the proof that no step ran twice."""

    __tablename__ = "journey_steps"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "seq"),
        Index("ix_journey_steps_lead_id_at", "lead_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    enrolment_id: Mapped[int] = mapped_column(BigId, ForeignKey("journey_enrolments.id"))
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    journey_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    position: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # enrol | wait | action | done | exit
    action: Mapped[str] = mapped_column(String(16), default="")  # the action kind, for kind "action"
    channel: Mapped[str] = mapped_column(String(8), default="")  # oa | wecom | internal (weekly caps count these)
    outcome: Mapped[str] = mapped_column(String(16))  # entered | waiting | sent | skipped | deferred | failed | ...
    reason: Mapped[str] = mapped_column(String(64), default="")
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Segment(Base):
    """A saved lead-list query (sdr_console/api/lead_list.py parameters) that batch messages are sent to. Who may
    reach which of its leads is decided when it is used: the sender's and the creator's scopes, both."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: a service token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Batch(Base):
    """One batch message to a segment (bot/batches): what was composed, by whom; the recipients say the rest."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id"), index=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)  # text template, link / mini-program card
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued (OA fan-out to do) | sent
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # at queue time: per channel and reason
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BatchTask(Base):
    """One WeCom ``add_msg_template`` call: ≤ 10,000 customers of one member, who must confirm it in WeCom."""

    __tablename__ = "batch_tasks"
    __table_args__ = (Index("ix_batch_tasks_status_next_check_at", "status", "next_check_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(BigId, ForeignKey("batches.id"), index=True)
    member_userid: Mapped[str] = mapped_column(String(64))  # the WeCom member (sender)
    chunk: Mapped[int] = mapped_column(Integer, default=1)  # 1, 2 ... among this member's tasks of the batch
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    msgid: Mapped[str | None] = mapped_column(String(128))
    # queued | sandboxed | waiting (created, not confirmed) | done | failed | expired
    status: Mapped[str] = mapped_column(String(12), default="queued")
    errcode: Mapped[int | None] = mapped_column(Integer)
    reminders: Mapped[list[Any]] = mapped_column(JSON, default=list)  # epoch seconds of remind_groupmsg_send
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sdr_task_id: Mapped[int | None] = mapped_column(BigId)  # the lead_tasks fallback, once
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BatchRecipient(Base):
    """One lead of a batch: its channel (wecom | oa, "" when excluded), why it was excluded, and its outcome."""

    __tablename__ = "batch_recipients"
    __table_args__ = (
        Index("ix_batch_recipients_batch_id_id", "batch_id", "id"),
        Index("ix_batch_recipients_lead_id_created_at", "lead_id", "created_at"),  # timeline, caps and limits
        Index("ix_batch_recipients_task_id_external_userid", "task_id", "external_userid"),
        Index("ix_batch_recipients_batch_id_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(BigId, ForeignKey("batches.id"))
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"))
    channel: Mapped[str] = mapped_column(String(8), default="")
    # excluded | queued | sandboxed | waiting | sent | unsent | not_friend | over_limit | failed | oa (see outbox)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(32), default="")  # an exclusion reason (leads/batches/reasons.py)
    member_userid: Mapped[str | None] = mapped_column(String(64))
    external_userid: Mapped[str | None] = mapped_column(String(IDENTITY_VALUE_LEN))
    openid: Mapped[str | None] = mapped_column(String(IDENTITY_VALUE_LEN))
    task_id: Mapped[int | None] = mapped_column(BigId)
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    errcode: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
