"""Sales' answer to a routed MQL, and what the CRM receives when they accept it. Pure.

- ``DecisionRefused``: why an accept / return cannot happen (the API answers ``status``; the card handler too).
- ``check_return``: the reason must be one of ``handoff.return_reasons``; the free text is short, printable.
- ``webhook_body`` / ``webhook_headers``: the ``lead.accepted`` delivery. The signature is
  ``X-LeadRelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with crm.webhook_secret>``
  (the timestamp inside the signed text lets the receiver refuse replays); ``X-LeadRelay-Idempotency-Key`` is the
  same on every retry and resend of one accepted assignment, so the receiver keeps each lead once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

RETURN_TEXT_MAX = 500
EVENT_ACCEPTED = "lead.accepted"
SIGNATURE_HEADER = "X-LeadRelay-Signature"
IDEMPOTENCY_HEADER = "X-LeadRelay-Idempotency-Key"
EVENT_HEADER = "X-LeadRelay-Event"
WEBHOOK_VERSION = 1

# DecisionRefused codes
NOT_FOUND, FORBIDDEN, NOT_PENDING, ALREADY_ACCEPTED, BAD_REASON, BAD_TEXT = (
    "lead_not_found", "not_your_lead", "not_pending", "already_accepted", "bad_reason", "bad_text")


class DecisionRefused(Exception):
    """An accept or return that cannot happen: ``status`` (400 | 403 | 404 | 409), a stable ``code`` and a
    Chinese ``message`` for the person who tried."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found() -> DecisionRefused:
    return DecisionRefused(404, NOT_FOUND, "线索不存在")


def forbidden() -> DecisionRefused:
    return DecisionRefused(403, FORBIDDEN, "这条线索没有分配给你，无权接受或退回")


def already_accepted() -> DecisionRefused:
    return DecisionRefused(409, ALREADY_ACCEPTED, "已接受")


def not_pending(status: str | None) -> DecisionRefused:
    """No pending assignment: never routed, already decided (returned, or accepted by someone else), or reassigned."""
    label = {"accepted": "已被接受", "returned": "已被退回", "superseded": "已改派给其他人"}.get(status or "")
    return DecisionRefused(409, NOT_PENDING, f"这条线索{label}，无需处理" if label else "这条线索没有待处理的分配")


def check_return(reason: str, text: str, reasons: tuple[str, ...]) -> tuple[str, str]:
    """The reason and the trimmed free text, or DecisionRefused 400 naming what is wrong."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if reason not in reasons:
        raise DecisionRefused(400, BAD_REASON, f"请选择退回原因（可选：{'、'.join(reasons)}）")
    text = text.strip() if isinstance(text, str) else ""
    if len(text) > RETURN_TEXT_MAX:
        raise DecisionRefused(400, BAD_TEXT, f"补充说明不能超过 {RETURN_TEXT_MAX} 个字")
    if any(not ch.isprintable() and ch != "\n" for ch in text):
        raise DecisionRefused(400, BAD_TEXT, "补充说明不能包含控制字符")
    return reason, text


def idempotency_key(assignment_id: int) -> str:
    """The same for every attempt and resend of one accepted assignment (also the outbox row's unique key)."""
    return f"lead-accepted-{assignment_id}"


@dataclass(frozen=True, slots=True)
class AcceptedLead:
    """What the CRM is told about an accepted lead (storage/repos/webhooks.py gathers it)."""

    lead: dict[str, Any]  # id, display_name, stage, created_at, profile
    identities: list[dict[str, Any]]  # kind, app, value, verified: the company's own CRM gets phone / email
    score: dict[str, Any]  # ability, motivation, quadrant
    bant: dict[str, Any]
    touchpoints: list[dict[str, Any]]  # kind, channel, scene, source_code, occurred_at
    stages: list[dict[str, Any]]  # from, to, actor, reason, at
    salesperson: dict[str, Any]  # id, username, display_name, wecom_userid
    assignment: dict[str, Any]  # id, rule, reason, team_id, assigned_at, accepted_at


def webhook_body(accepted: AcceptedLead, *, event_id: str) -> str:
    """The JSON text that is signed and sent: compact, keys in a stable order, UTF-8 (ensure_ascii off)."""
    doc = {
        "event": EVENT_ACCEPTED, "version": WEBHOOK_VERSION, "id": event_id,
        "lead": {**accepted.lead, "identities": accepted.identities, "score": accepted.score, "bant": accepted.bant,
                 "touchpoints": accepted.touchpoints, "stage_history": accepted.stages},
        "salesperson": accepted.salesperson, "assignment": accepted.assignment,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def signature(secret: str, timestamp: int, body: str) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: str, *, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does (and the tests): the v1 MAC matches and the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_headers(secret: str, body: str, *, key: str, timestamp: int) -> dict[str, str]:
    """The headers of one attempt: signed at send time (a retry gets a fresh timestamp, the same key)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        IDEMPOTENCY_HEADER: key,
        EVENT_HEADER: EVENT_ACCEPTED,
    }
