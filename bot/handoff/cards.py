"""The WeCom messages that put a routed MQL on a salesperson's phone. Pure: facts in, JSON bodies out.

- ``template_card``: a ``button_interaction`` card (WeCom 3.1.6+): name and company, score and quadrant, the
  top reasons of the score, the source; the card opens the lead in the mobile inbox; buttons 接受 / 退回.
- ``textcard``: for members whose client cannot show template cards (users.card_style = "textcard").
- ``digest_card``: a ``text_notice`` listing several leads, sent instead of cards WeCom would drop (more
  than 30 app messages a minute or 1,000 an hour per member): see bot/outbox/digest.py.

WeCom truncates or refuses long fields, and counts some limits in bytes: every text here is cut on a UTF-8
character boundary (``fit``). The documented limits: textcard title 128 bytes, description 512 bytes; the
template card's are given as "建议不超过 N 个字" (title 36, desc 44, keyname 5, value 30, sub_title_text 160,
button 10), taken here as N characters of up to 3 bytes each. task_id: at most 128 bytes of [0-9A-Za-z_-@],
unique per app (a card's buttons answer with it in the callback).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ELLIPSIS = "…"
ACCEPT, RETURN, REASSIGNED = "accept", "return", "reassigned"
TEMPLATE_CARD, TEXTCARD = "template_card", "textcard"
CARD_STYLES = (TEMPLATE_CARD, TEXTCARD)
TASK_ID_MAX = 128
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
_BUTTON_KEY = re.compile(r"(accept|return):([0-9]{1,18})")

# Byte budgets (see the module docstring).
TITLE_BYTES, DESC_BYTES, SUB_TITLE_BYTES = 36 * 3, 44 * 3, 160 * 3
KEYNAME_BYTES, VALUE_BYTES, BUTTON_BYTES = 5 * 3, 30 * 3, 10 * 3
TEXTCARD_TITLE_BYTES, TEXTCARD_DESC_BYTES = 128, 512
TOP_REASONS = 3
DIGEST_LINES = 8  # leads named in a digest; the rest are counted ("等 N 条")


@dataclass(frozen=True, slots=True)
class CardLead:
    """What a card says about the lead (ids and labels; the salesperson sees the name and company anyway)."""

    lead_id: int
    name: str
    company: str
    ability: float | None
    motivation: float | None
    quadrant_label: str
    reasons: tuple[str, ...]  # the score's top contributions, already worded
    source: str  # first touch: "channel / scene"

    @property
    def title(self) -> str:
        return " · ".join(p for p in (self.name or f"线索 #{self.lead_id}", self.company) if p)

    @property
    def score(self) -> str:
        parts = [f"能力 {_num(self.ability)}" if self.ability is not None else "",
                 f"意向 {_num(self.motivation)}" if self.motivation is not None else ""]
        return " · ".join(p for p in parts if p) or "未评分"


def fit(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8, on a character boundary, ending in "…" when cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    room = max(max_bytes - len(ELLIPSIS.encode("utf-8")), 0)
    # errors="ignore" drops the partial character a byte cut can leave at the end.
    cut = data[:room].decode("utf-8", errors="ignore")
    return cut + ELLIPSIS if room else cut


def new_task_id(assignment_id: int) -> str:
    """Unique per card: a reassigned lead gets a new card (and a new task_id) for the new assignment."""
    task_id = f"a{assignment_id}-{secrets.token_hex(8)}"
    assert _TASK_ID.fullmatch(task_id)
    return task_id


def button_key(action: str, assignment_id: int) -> str:
    return f"{action}:{assignment_id}"


def parse_button_key(key: str | None) -> tuple[str, int] | None:
    """(action, assignment id) of a card button's EventKey, or None for anything else."""
    m = _BUTTON_KEY.fullmatch((key or "").strip())
    return (m[1], int(m[2])) if m else None


def lead_url(base_url: str, lead_id: int, *, returning: bool = False) -> str:
    """The lead in the mobile inbox; ids only (no personal data in URLs)."""
    url = f"{base_url.rstrip('/')}/m/leads/{lead_id}"
    return url + "?return=1" if returning else url


def inbox_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/m/?tab=pending"


def template_card(lead: CardLead, assignment_id: int, *, base_url: str, task_id: str) -> dict[str, Any]:
    """The ``template_card`` body of message/send.

    退回 is a jump button (type 1) to the lead page with the return form open: a card click can carry no
    text, and sales must pick a reason (handoff.return_reasons) and may explain it. 接受 is a callback button:
    the template_card_event comes to our WeCom callback (handlers/cards.py), and the card is then updated
    for every recipient (bot/handoff/card_update.py).
    """
    url = lead_url(base_url, lead.lead_id)
    rows = [("评分", lead.score), ("象限", lead.quadrant_label), ("来源", lead.source)]
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": "新的 MQL 待接收", "desc_color": 1},
        "main_title": {"title": fit(lead.title, TITLE_BYTES),
                       "desc": fit(f"{lead.score} · {lead.quadrant_label}", DESC_BYTES)},
        "horizontal_content_list": [{"keyname": fit(k, KEYNAME_BYTES), "value": fit(v or "—", VALUE_BYTES)}
                                    for k, v in rows],
        "card_action": {"type": 1, "url": url},
        "task_id": task_id,
        "button_list": [
            {"text": "接受", "style": 1, "key": button_key(ACCEPT, assignment_id)},
            {"text": "退回", "style": 2, "type": 1, "url": lead_url(base_url, lead.lead_id, returning=True)},
        ],
    }
    if lead.reasons:
        card["sub_title_text"] = fit("评分理由：" + "；".join(lead.reasons[:TOP_REASONS]), SUB_TITLE_BYTES)
    return card


def textcard(lead: CardLead, *, base_url: str) -> dict[str, Any]:
    """The ``textcard`` body: no buttons; 详情 opens the lead page, where 接受 / 退回 are."""
    lines = [f"评分：{lead.score}", f"象限：{lead.quadrant_label}", f"来源：{lead.source or '—'}"]
    if lead.reasons:
        lines.append("理由：" + "；".join(lead.reasons[:TOP_REASONS]))
    # textcard descriptions take a little HTML (<div class="gray">); the text is escaped for it.
    description = "".join(f"<div>{_escape(line)}</div>" for line in lines)
    return {"title": fit(f"新线索：{lead.title}", TEXTCARD_TITLE_BYTES),
            "description": _fit_html(description, lines),
            "url": lead_url(base_url, lead.lead_id), "btntxt": "详情"}


def digest_item(lead: CardLead, assignment_id: int) -> dict[str, Any]:
    """What a digest needs of a card it replaces (kept in the card's outbox payload)."""
    return {"lead_id": lead.lead_id, "assignment_id": assignment_id, "title": fit(lead.title, TITLE_BYTES)}


def card_payload(userid: str, msgtype: str, card: dict[str, Any], lead: CardLead, assignment_id: int,
                 *, base_url: str) -> dict[str, Any]:
    """The outbox payload of one lead's card (wecom.template_card / wecom.textcard)."""
    return {"userid": userid, "msgtype": msgtype, "card": card, "assignment_id": assignment_id,
            "item": digest_item(lead, assignment_id), "inbox_url": inbox_url(base_url)}


def digest_payload(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The outbox payload of the digest replacing ``payloads`` (cards, or earlier digests), oldest first."""
    items: list[dict[str, Any]] = []
    for p in payloads:
        items.extend(p["items"] if "items" in p else [p["item"]])
    first = payloads[0]
    return {"userid": first["userid"], "msgtype": TEMPLATE_CARD, "card": digest_card(items, url=first["inbox_url"]),
            "items": items, "inbox_url": first["inbox_url"]}


def digest_card(items: Sequence[dict[str, Any]], *, url: str) -> dict[str, Any]:
    """A ``text_notice`` card listing the leads of ``items`` (oldest first), opening the pending tab ``url``."""
    names = [f"· {item.get('title') or '线索 #' + str(item.get('lead_id'))}" for item in items[:DIGEST_LINES]]
    if len(items) > DIGEST_LINES:
        names.append(f"等 {len(items)} 条")
    return {
        "card_type": "text_notice",
        "source": {"desc": "新的 MQL 待接收", "desc_color": 1},
        "main_title": {"title": fit(f"{len(items)} 条新线索待处理", TITLE_BYTES),
                       "desc": fit("消息较多，已合并为一条，请在手机收件箱逐条接受或退回", DESC_BYTES)},
        "emphasis_content": {"title": str(len(items)), "desc": "条待接收"},
        "sub_title_text": fit("\n".join(names), SUB_TITLE_BYTES),
        "jump_list": [{"type": 1, "title": "打开收件箱", "url": url}],
        "card_action": {"type": 1, "url": url},
    }


def decided_label(action: str, actor_name: str) -> str:
    """The text the card's buttons become once the lead is decided ("已接受 · 张三")."""
    done = {ACCEPT: "已接受", RETURN: "已退回"}.get(action, "已改派")
    return fit(f"{done} · {actor_name}" if actor_name else done, BUTTON_BYTES)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit_html(description: str, lines: list[str]) -> str:
    """Whole <div> lines within the byte limit: a cut inside a tag would break the markup."""
    if len(description.encode("utf-8")) <= TEXTCARD_DESC_BYTES:
        return description
    out = ""
    for line in lines:
        budget = TEXTCARD_DESC_BYTES - len(out.encode("utf-8")) - len("<div></div>")
        if budget <= len(ELLIPSIS.encode("utf-8")):
            break
        piece = _escape(line)
        # Escaping can grow a line: cut the raw text until its escaped form fits.
        text = line
        while len(piece.encode("utf-8")) > budget:
            text = fit(text, max(len(text.encode("utf-8")) - 3, 0))
            piece = _escape(text)
        out += f"<div>{piece}</div>"
    return out
