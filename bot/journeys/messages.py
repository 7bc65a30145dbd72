"""What a journey step that went ahead writes: an outbox row for a message or a webhook, a task for an SDR.

Each message is marked marketing: the sender checks consent once more before it leaves (a lead may unsubscribe
between the step and the send). ``{name}`` and ``{company}`` in a text become the lead's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.config.journey_steps import parse_due
from leads.journeys.definition import Action, Journey
from leads.journeys.machine import wait_until
from leads.journeys.plan import Record
from storage.repos.journey_facts import LeadFacts

WECOM_TEXT_MAX = 2000  # characters: WeCom refuses texts over 2048 bytes in some methods, keep a margin


@dataclass(frozen=True, slots=True)
class Effect:
    """One step's write: an outbox row (``message``), a task, or nothing with the reason it could not apply."""

    message: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    tag: tuple[str, str] | None = None  # ("add" | "remove", tag)
    stage: str | None = None
    skipped: str = ""


def step_key(enrolment_id: int, seq: int) -> str:
    return f"journey:{enrolment_id}:{seq}"


def personalise(text: str, facts: LeadFacts) -> str:
    company = facts.view.profile.get("company", "")
    return text.replace("{name}", facts.name or "客户").replace("{company}", company or "贵公司")


def effect_of(record: Record, journey: Journey, enrolment_id: int, lead_id: int, facts: LeadFacts, *,
              base_url: str, now: datetime, tz: tzinfo) -> Effect:
    action = record.action
    assert action is not None
    key = step_key(enrolment_id, record.seq)
    text = personalise(action.param("text"), facts)
    url = action.param("url")
    kind = action.kind
    if kind in ("tag_add", "tag_remove"):
        return Effect(tag=("add" if kind == "tag_add" else "remove", action.param("tag")))
    if kind == "stage":
        return Effect(stage=action.param("stage"))
    if kind == "sdr_task":
        due = action.param("due")
        due_at = wait_until(parse_due(due), now, tz) if due else None
        return Effect(task={"lead_id": lead_id, "title": (text or journey.name)[:200], "due_at": due_at,
                            "assignee_user_id": facts.owner_user_id, "created_at": now})
    if kind == "notify_owner":
        if not facts.owner_wecom:
            return Effect(skipped="no_owner_wecom")
        who = facts.name or f"#{lead_id}"
        content = f"【培育旅程·{journey.name}】{text}\n潜客：{who}\n{base_url}/console/leads/{lead_id}"
        return Effect(message=_row(key, "wecom", "wecom.app_text", lead_id,
                                   {"userid": facts.owner_wecom, "content": content[:WECOM_TEXT_MAX]}))
    if kind == "webhook":
        body = json.dumps({"journey": journey.id, "lead_id": lead_id, "step": record.position, "at": now.isoformat()},
                          ensure_ascii=False)
        return Effect(message=_row(key, "crm", "journey.webhook", lead_id, {"url": url, "body": body, "key": key}))
    return Effect(message=_customer_message(action, key, lead_id, facts, text, url))


def _customer_message(action: Action, key: str, lead_id: int, facts: LeadFacts, text: str, url: str
                      ) -> dict[str, Any]:
    if action.kind == "oa_template":
        data = {"first": {"value": text}, "remark": {"value": url}} if url else {"first": {"value": text}}
        payload: dict[str, Any] = {"openid": facts.openid, "template_id": action.param("template"), "data": data,
                                   "marketing": True}
        if url:
            payload["url"] = url
        return _row(key, "oa", "oa.template", lead_id, payload)
    content = f"{text}\n{url}" if url else text
    if action.kind == "oa_custom":
        return _row(key, "oa", "oa.custom_text", lead_id, {"openid": facts.openid, "content": content,
                                                          "marketing": True})
    return _row(key, "wecom", "wecom.add_msg_template", lead_id,
                {"sender": facts.sender, "external_userid": facts.external_userid,
                 "content": content[:WECOM_TEXT_MAX], "marketing": True})


def _row(key: str, target: str, method: str, lead_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"idempotency_key": key, "target": target, "method": method, "payload": payload, "lead_id": lead_id}
