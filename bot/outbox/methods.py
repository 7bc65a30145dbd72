"""What the outbox can send: method name -> target, required payload keys and the async send function.

Register a new kind of outbound call with ``register_method``; ``bot.outbox.sender.enqueue`` refuses unknown
methods and incomplete payloads, so a bad row is caught where it is written, not when it is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.wechat.api import OfficialAccountAPI, WeComAPI


@dataclass(frozen=True)
class ApiClients:
    """The live API clients the sender may use; a target without a client is simply not sent."""

    oa: OfficialAccountAPI | None = None
    wecom: WeComAPI | None = None

    @property
    def targets(self) -> frozenset[str]:
        return frozenset(name for name in ("oa", "wecom") if getattr(self, name) is not None)


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


METHODS: dict[str, OutboxMethod] = {
    "oa.custom_text": OutboxMethod("oa", ("openid", "content"), _oa_custom_text, service_window=True),
    "oa.template": OutboxMethod("oa", ("openid", "template_id", "data"), _oa_template),
    "wecom.welcome": OutboxMethod("wecom", ("welcome_code", "text"), _wecom_welcome, max_age_s=20.0,
                                  done_errcodes=frozenset({41051})),
    "wecom.app_text": OutboxMethod("wecom", ("userid", "content"), _wecom_app_text, rate_limited_by="userid"),
    # A console reply to a WeCom contact: a message task its owning member confirms (the company cannot send).
    "wecom.add_msg_template": OutboxMethod("wecom", ("sender", "external_userid", "content"), _wecom_msg_task),
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
    48002,  # the secret lacks the permission for this API
    81013,  # no valid WeCom recipient
    84061,  # not an external contact of the company
})
