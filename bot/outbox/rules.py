"""Rules an outbound message must pass before WeChat sees it: the lead's consent and the 48-hour window.

One place decides, two places ask: the sender right before each send (live mode: consent and the window
may have changed since the enqueue), and ``enqueue`` in sandbox mode, so the sandbox outbox shows what live
mode would have done. Outcomes other than sending:

- "suppressed": a marketing message to a lead whose consent is "revoked" (退订, unfollow, removed the SDR).
  Only a new explicit consent restores marketing, and only for messages enqueued after it is checked.
- "skipped": an OA customer-service message outside ``outbound.customer_service_window_h`` of the user's
  last own action (WeChat would answer 45015), with no fallback allowed.
- "fallback": the same, but replaced by an ``oa.template`` row for ``outbound.fallback_template_id``,
  enqueued in the same transaction. Marketing never falls back: WeChat reserves template messages for
  service notices.

The fallback template gets the text as ``{"first": {"value": text}, "keyword1": {"value": first 20
characters}}``: configure a template whose body uses ``{{first.DATA}}`` and ``{{keyword1.DATA}}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config.outbound import OutboundConfig
from bot.outbox.methods import OutboxMethod
from storage.repos.outbox import LeadFacts

# The rules' verdicts (every status a row can have: storage.repos.outbox.OUTBOX_STATUSES).
SUPPRESSED, SKIPPED, FALLBACK = "suppressed", "skipped", "fallback"
WINDOW_CLOSED_ERRCODE = 45015
FALLBACK_METHOD = "oa.template"
_KEYWORD_CHARS = 20  # template keyword values are short; the full text is in "first"


@dataclass(frozen=True)
class FollowUp:
    """A row to enqueue together with the verdict (the template that replaces a closed-window message)."""

    target: str
    method: str
    payload: dict[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    follow_up: FollowUp | None = None


def is_marketing(spec: OutboxMethod, payload: dict[str, Any]) -> bool:
    return bool(payload.get("marketing", spec.marketing))


def needs_lead_facts(spec: OutboxMethod | None, payload: dict[str, Any]) -> bool:
    """Whether any rule applies to the row (the others need no lead lookup)."""
    return spec is not None and (spec.service_window or is_marketing(spec, payload))


def judge(spec: OutboxMethod, payload: dict[str, Any], facts: LeadFacts | None, outbound: OutboundConfig,
          now: datetime, idempotency_key: str) -> Verdict | None:
    """Why this message must not be sent now, or None to send it.

    Rows without a lead cannot be checked here: enqueue refuses marketing without a lead, and a service
    message without one relies on WeChat's own 45015 (which takes the same fallback path).
    """
    if facts is None:
        return None
    marketing = is_marketing(spec, payload)
    if marketing and facts.consent == "revoked":
        return Verdict(SUPPRESSED, "consent revoked: no marketing messages to this lead")
    if spec.service_window:
        last = facts.oa_last_interaction_at
        window = timedelta(hours=outbound.customer_service_window_h)
        if last is None or now - last > window:
            since = "no OA interaction on record" if last is None else f"last OA interaction {last.isoformat()}"
            why = f"customer-service window closed ({since}, window {outbound.customer_service_window_h} h)"
            return window_closed(payload, marketing, outbound, idempotency_key, why)
    return None


def window_closed(payload: dict[str, Any], marketing: bool, outbound: OutboundConfig, idempotency_key: str,
                  why: str) -> Verdict:
    """The verdict for a customer-service message WeChat will not (or did not) accept."""
    template = None if marketing else fallback_payload(payload, outbound)
    if template is None:
        return Verdict(SKIPPED, f"{why}; no template fallback " + (
            "for marketing" if marketing else "configured (outbound.fallback_template_id)"))
    follow_up = FollowUp("oa", FALLBACK_METHOD, template, fallback_key(idempotency_key))
    return Verdict(FALLBACK, f"{why}; sent as template message {outbound.fallback_template_id} instead", follow_up)


def fallback_payload(payload: dict[str, Any], outbound: OutboundConfig) -> dict[str, Any] | None:
    text = payload.get("content")
    if not outbound.fallback_template_id or not isinstance(text, str) or not payload.get("openid"):
        return None
    data = {"first": {"value": text}, "keyword1": {"value": text[:_KEYWORD_CHARS]}}
    template: dict[str, Any] = {"openid": payload["openid"], "template_id": outbound.fallback_template_id,
                                "data": data}
    if outbound.fallback_template_url:
        template["url"] = outbound.fallback_template_url
    return template


def fallback_key(idempotency_key: str) -> str:
    """Derived from the original's key, so a re-decided original never enqueues a second template."""
    key = f"{idempotency_key}:fallback"
    if len(key) <= 200:  # the column's size
        return key
    return "fallback:" + hashlib.sha256(idempotency_key.encode()).hexdigest()
