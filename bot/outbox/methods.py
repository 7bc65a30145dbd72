"""What the outbox can send: method name -> target, required payload keys and the async send function.

Register a new kind of outbound call with ``register_method``; ``bot.outbox.sender.enqueue`` refuses unknown
methods and incomplete payloads, so a bad row is caught where it is written, not when it is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.handoff.cards import digest_payload
from bot.handoff.digest_events import cards_merged
from bot.wechat.api import OfficialAccountAPI, WeComAPI
from storage.repos.handoff_cards import DIGEST_METHOD

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.handoff.crm_client import CrmWebhookClient
    from storage.models import OutboxMessage


@dataclass(frozen=True)
class ApiClients:
    """The live API clients the sender may use; a target without a client is simply not sent."""

    oa: OfficialAccountAPI | None = None
    wecom: WeComAPI | None = None
    crm: CrmWebhookClient | None = None  # the CRM webhook: set when crm.webhook_url is, in sandbox mode too

    @property
    def targets(self) -> frozenset[str]:
        return frozenset(name for name in ("oa", "wecom", "crm") if getattr(self, name) is not None)


class DeliveryFailed(Exception):
    """A failed call to a target that is not WeChat (the CRM webhook): retry it or not, and what it answered
    (``detail``: status_code, duration_ms), kept on the row and in the method's attempt log."""

    def __init__(self, message: str, *, retryable: bool, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.retryable, self.detail = retryable, detail


SendFn = Callable[[ApiClients, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class OutboxMethod:
    target: str
    required: tuple[str, ...]
    send: SendFn
    # Some calls are worthless once late (a welcome code expires 20 s after the add event). A payload may
    # also carry "not_after" (epoch seconds) when the deadline runs from an earlier moment than the enqueue.
    max_age_s: float | None = None
    # Default of the payload's "marketing" flag. Marketing is never sent to a lead whose consent is revoked;
    # replies to the user's own question and service notices are not marketing.
    marketing: bool = False
    # OA customer-service messages: only within outbound.customer_service_window_h of the user's last action.
    service_window: bool = False
    # Payload key naming the recipient member(s) ("a|b"): WeCom drops app messages beyond the per-member
    # limits silently, so the sender takes a slot from the shared rate limiter for each before sending.
    rate_limited_by: str | None = None
    # Errors meaning "already done" (41051: the welcome code was used, i.e. an earlier attempt got through).
    done_errcodes: frozenset[int] = frozenset()
    # Every attempt (its status_code, duration_ms and error) is written to webhook_attempts by the sender.
    log_attempts: bool = False
    # Rows of a member that wait for a rate-limit slot are merged into one row of ``digest.method`` instead
    # of queueing up (bot/outbox/digest.py): hand-off cards become one digest card.
    digest: Digest | None = None


@dataclass(frozen=True)
class Digest:
    """How waiting rows become one: ``build`` turns their payloads (oldest first) into the digest's payload."""

    method: str
    build: Callable[[list[dict[str, Any]]], dict[str, Any]]
    # Told, in the same transaction, which rows went into digest row ``digest_id`` (the lead timelines).
    merged: Callable[[AsyncSession, Sequence[OutboxMessage], int, datetime], Awaitable[None]] | None = None


def _oa(apis: ApiClients) -> OfficialAccountAPI:
    if apis.oa is None:  # the sender only claims rows for configured targets
        raise RuntimeError("Official Account API not configured")
    return apis.oa


def _wecom(apis: ApiClients) -> WeComAPI:
    if apis.wecom is None:
        raise RuntimeError("WeCom API not configured")
    return apis.wecom


async def _oa_custom_text(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _oa(apis).send_custom_text(p["openid"], p["content"])


async def _oa_template(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _oa(apis).send_template(p["openid"], p["template_id"], p["data"], url=p.get("url"))


async def _wecom_welcome(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).send_welcome_msg(p["welcome_code"], p["text"])


async def _wecom_msg_task(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).add_msg_template(p["sender"], p["external_userid"], p["content"])


async def _wecom_app_text(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).send_app_text(p["userid"], p["content"])


async def _crm_lead_accepted(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    if apis.crm is None:
        raise RuntimeError("CRM webhook not configured")
    return await apis.crm.deliver(p["body"], key=p["key"])


async def _journey_webhook(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    if apis.crm is None:
        raise RuntimeError("CRM webhook not configured")
    return await apis.crm.deliver(p["body"], key=p["key"], url=p["url"])


async def _wecom_card(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).send_app_message(p["userid"], p["msgtype"], p["card"])


async def _wecom_update_card(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).update_template_card(p["userids"], p["response_code"], replace_name=p["replace_name"])


async def _wecom_transfer(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).transfer_customer(p["handover_userid"], p["takeover_userid"], p["external_userid"],
                                                message=p.get("transfer_success_msg"),
                                                resigned=bool(p.get("resigned")))


async def _wecom_groupmsg(apis: ApiClients, p: dict[str, Any]) -> dict[str, Any]:
    return await _wecom(apis).add_msg_template_batch(p["sender"], p["external_userid"], p["content"],
                                                     p.get("attachments"))


# The hand-off's cards to a salesperson (bot/handoff/push.py): over WeCom's per-member limits, one digest.
_CARD = OutboxMethod("wecom", ("userid", "msgtype", "card"), _wecom_card, rate_limited_by="userid",
                     digest=Digest(DIGEST_METHOD, digest_payload, cards_merged))

METHODS: dict[str, OutboxMethod] = {
    "oa.custom_text": OutboxMethod("oa", ("openid", "content"), _oa_custom_text, service_window=True),
    "oa.template": OutboxMethod("oa", ("openid", "template_id", "data"), _oa_template),
    "wecom.welcome": OutboxMethod("wecom", ("welcome_code", "text"), _wecom_welcome, max_age_s=20.0,
                                  done_errcodes=frozenset({41051})),
    "wecom.app_text": OutboxMethod("wecom", ("userid", "content"), _wecom_app_text, rate_limited_by="userid"),
    # A console reply to a WeCom contact: a message task its owning member confirms (the company cannot send).
    "wecom.add_msg_template": OutboxMethod("wecom", ("sender", "external_userid", "content"), _wecom_msg_task),
    # An accepted lead for the CRM (bot/handoff/crm.py): the signed JSON body, the same key on every attempt.
    "crm.lead_accepted": OutboxMethod("crm", ("body", "key"), _crm_lead_accepted, log_attempts=True),
    # A journey's webhook step (bot/journeys/messages.py), signed like the CRM's and retried the same way.
    "journey.webhook": OutboxMethod("crm", ("url", "body", "key"), _journey_webhook, log_attempts=True),
    "wecom.template_card": _CARD,
    "wecom.textcard": _CARD,
    DIGEST_METHOD: _CARD,
    # Not an app message: no per-member slot. Each response_code works once (bot/handoff/card_update.py).
    "wecom.update_template_card": OutboxMethod("wecom", ("userids", "response_code", "replace_name"),
                                               _wecom_update_card),
    # ≤ 100 of a member's customers to a colleague (bot/handoff/transfer.py); the answer is per customer.
    "wecom.transfer_customer": OutboxMethod("wecom", ("handover_userid", "takeover_userid", "external_userid"),
                                            _wecom_transfer),
    # A batch message (bot/batches): one member's task for ≤ 10,000 customers; the answer keeps its msgid.
    "wecom.groupmsg_task": OutboxMethod("wecom", ("sender", "external_userid", "content"), _wecom_groupmsg),
}


def register_method(name: str, method: OutboxMethod) -> None:
    if name in METHODS:
        raise ValueError(f"outbox method {name!r} is already registered")
    METHODS[name] = method


# Errors that no retry can fix: the row fails at once instead of burning its attempts.
PERMANENT_ERRCODES = frozenset({
    40003,  # invalid openid
    40037,  # invalid template_id
    43004,  # the user does not follow the OA
    45015,  # outside the 48 h customer-service window (the sender falls back to a template first)
    41051,  # welcome code already used (wecom.welcome treats it as sent: see done_errcodes)
    40058,  # invalid parameter (a card field WeCom refuses, a used or expired response_code)
    48002,  # the secret lacks the permission for this API
    81013,  # no valid WeCom recipient
    84061,  # not an external contact of the company
})
