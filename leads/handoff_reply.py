"""How the console answers a hand-off question: through which channel, as what kind of message, and why not.

Pure decisions (no I/O): sdr_console/api/handoffs.py gathers the facts and writes the outbox row.

- Official Account: a customer-service text is allowed for ``window_h`` hours after the person's own last OA
  action (WeChat answers 45015 afterwards). Exactly at the boundary the window is still open — the same
  comparison bot/outbox/rules.py applies before sending, so the console never promises what the sender refuses.
  Outside the window only a template message may reach them, and only when one is configured.
- WeCom external contact: the company cannot message a contact directly; it creates a message task
  (``externalcontact/add_msg_template``) that the owning member confirms in their WeCom app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

OA, WECOM = "oa", "wecom"
CHANNEL_LABELS = {OA: "公众号", WECOM: "企业微信"}
AUTO, TEMPLATE = "auto", "template"
MODES = (AUTO, TEMPLATE)
TEMPLATE_KEYWORD_CHARS = 20  # template keyword values are short; the full text is in "first"

# What the reply becomes.
OA_TEXT, OA_TEMPLATE, WECOM_TASK = "oa_text", "oa_template", "wecom_task"
# Why it cannot be sent.
OUTSIDE_WINDOW, NO_TEMPLATE, NO_CHANNEL, NO_MEMBER = ("outside_service_window", "no_template_configured",
                                                      "no_reply_channel", "no_owning_member")


@dataclass(frozen=True, slots=True)
class Reach:
    """How the lead can be reached: its OA OpenID, its WeCom external id and the member who owns that contact."""

    openid: str | None = None
    external_userid: str | None = None
    wecom_owner: str | None = None
    oa_last_interaction_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """The OA customer-service window: open or not, and when it closes (or closed); None without any OA action."""

    open: bool
    closes_at: datetime | None


@dataclass(frozen=True, slots=True)
class Plan:
    """``kind`` (OA_TEXT / OA_TEMPLATE / WECOM_TASK) when the reply can go, else ``refusal`` says why."""

    channel: str | None
    kind: str | None = None
    refusal: str | None = None


def channel_of(reach: Reach) -> str | None:
    """OA first: the bot's questions arrive there, and its reply reaches the person directly."""
    if reach.openid:
        return OA
    if reach.external_userid:
        return WECOM
    return None


def service_window(last_action: datetime | None, now: datetime, window_h: int) -> Window:
    if last_action is None:
        return Window(False, None)
    closes_at = last_action + timedelta(hours=window_h)
    return Window(now <= closes_at, closes_at)


def plan_reply(reach: Reach, mode: str, now: datetime, window_h: int, template_id: str) -> Plan:
    channel = channel_of(reach)
    if channel is None:
        return Plan(None, refusal=NO_CHANNEL)
    if channel == WECOM:
        return Plan(WECOM, WECOM_TASK) if reach.wecom_owner else Plan(WECOM, refusal=NO_MEMBER)
    if mode == TEMPLATE:
        return Plan(OA, OA_TEMPLATE) if template_id else Plan(OA, refusal=NO_TEMPLATE)
    if service_window(reach.oa_last_interaction_at, now, window_h).open:
        return Plan(OA, OA_TEXT)
    return Plan(OA, refusal=OUTSIDE_WINDOW)


def hours_left(window: Window, now: datetime) -> int:
    """Whole hours left in an open window, rounded up (a window with 10 minutes left shows "1 小时")."""
    if not window.open or window.closes_at is None:
        return 0
    seconds = (window.closes_at - now).total_seconds()
    return max(1, int(-(-seconds // 3600)))


def template_payload(openid: str, text: str, template_id: str, url: str = "") -> dict[str, Any]:
    """The ``oa.template`` payload: the same shape as the outbox's own window fallback (bot/outbox/rules.py), so
    one configured template (``{{first.DATA}}``, ``{{keyword1.DATA}}``) serves both."""
    data = {"first": {"value": text}, "keyword1": {"value": text[:TEMPLATE_KEYWORD_CHARS]}}
    payload: dict[str, Any] = {"openid": openid, "template_id": template_id, "data": data}
    if url:
        payload["url"] = url
    return payload
