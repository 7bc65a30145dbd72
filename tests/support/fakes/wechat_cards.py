"""The fake's WeCom app cards: ``message/send`` with template cards and textcards (validated the way WeCom
does, answering a ``response_code``), WeCom's per-member limits (30 app messages a minute, 1,000 an hour: the
excess is silently dropped, as WeCom does), ``message/update_template_card`` (each response_code once, for
72 hours), and the ``template_card_event`` callback a click sends to the app (``card_click_xml`` /
``send_card_click``: encrypted and signed like WeCom's callbacks).

Errcodes: 40058 (invalid parameter: a missing or malformed card field, a duplicate task_id, an unknown, used
or expired response_code), 81013 (no valid recipient, from the plain message/send handler).

State lives on the FakeWeChatState (``cards_of(state)``), so each fake server has its own.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.ingress.simulate import WeComSimulator, render_xml
from tests.support.fakes.wechat_endpoints import ENDPOINTS, Call, _require, endpoint
from tests.support.fakes.wechat_state import ApiError, FakeWeChatState

INVALID = 40058
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
_SEND = ("POST", "/cgi-bin/message/send")


@dataclass
class SentCard:
    task_id: str
    card_type: str
    userids: list[str]
    body: dict[str, Any]
    msgid: str


@dataclass
class ResponseCode:
    task_id: str
    issued_at: float
    used: bool = False


@dataclass
class CardState:
    per_minute: int = 30
    per_hour: int = 1000
    response_code_ttl_s: float = 72 * 3600
    cards: dict[str, SentCard] = field(default_factory=dict)  # task_id -> the card sent with it
    codes: dict[str, ResponseCode] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)  # accepted update_template_card calls
    dropped: list[dict[str, Any]] = field(default_factory=list)  # messages WeCom would silently drop
    hits: dict[str, deque[float]] = field(default_factory=dict)  # member -> send times within the hour

    def messages(self, state: FakeWeChatState, msgtype: str, userid: str | None = None) -> list[dict[str, Any]]:
        """The delivered app messages of ``msgtype`` (to ``userid``), oldest first."""
        return [m for m in state.sent if m.get("kind") == "wecom.app" and m.get("msgtype") == msgtype
                and (userid is None or userid in str(m.get("touser", "")).split("|"))]


def cards_of(state: FakeWeChatState) -> CardState:
    found = state.__dict__.get("_cards")
    if found is None:
        found = state.__dict__["_cards"] = CardState()
    return found


_plain_send = ENDPOINTS[_SEND].handler  # text messages and recipients: wechat_endpoints.wecom_message_send


@endpoint(*_SEND, auth="wecom", scope="app")
def wecom_message_send(call: Call) -> dict[str, Any]:
    _require(call.body, "touser", "msgtype", "agentid")
    cards = cards_of(call.state)
    msgtype = str(call.body["msgtype"])
    if msgtype not in call.body:
        raise ApiError(INVALID, f"invalid parameter: missing {msgtype}")
    if msgtype == "template_card":
        _check_template_card(cards, call.body["template_card"])
    elif msgtype == "textcard":
        _check_textcard(call.body["textcard"])
    users = [u for u in str(call.body["touser"]).split("|") if u]
    if not _within_limits(cards, users, call.state.clock()):
        cards.dropped.append(dict(call.body))  # WeCom answers ok and never delivers it
        return {"invaliduser": "", "msgid": f"dropped-{secrets.token_hex(4)}"}
    result = _plain_send(call)
    if msgtype != "template_card":
        return result
    card = call.body["template_card"]
    if card.get("card_type") not in INTERACTIVE and "action_menu" not in card:
        return result  # only cards with callbacks can be updated: no response_code
    task_id = str(card["task_id"])
    cards.cards[task_id] = SentCard(task_id, str(card["card_type"]), users, card, str(result["msgid"]))
    return {**result, "response_code": _issue_code(call.state, task_id)}


@endpoint("POST", "/cgi-bin/message/update_template_card", auth="wecom", scope="app")
def wecom_update_template_card(call: Call) -> dict[str, Any]:
    _require(call.body, "agentid", "response_code")
    if int(call.body["agentid"]) != call.state.agent_id:
        raise ApiError(40056, "invalid agentid")
    body, cards = call.body, cards_of(call.state)
    if not isinstance(body.get("button"), dict) and not isinstance(body.get("template_card"), dict):
        raise ApiError(INVALID, "invalid parameter: button or template_card required")
    if isinstance(body.get("button"), dict) and not str(body["button"].get("replace_name") or ""):
        raise ApiError(INVALID, "invalid parameter: button.replace_name required")
    if not body.get("userids") and not body.get("atall"):
        raise ApiError(INVALID, "invalid parameter: userids or atall required")
    code = cards.codes.get(str(body["response_code"]))
    if code is None or code.used or call.state.clock() - code.issued_at > cards.response_code_ttl_s:
        raise ApiError(INVALID, "invalid response_code: unknown, used or expired")
    code.used = True
    cards.updates.append({"task_id": code.task_id, **body})
    return {"invaliduser": []}


def card_click_xml(state: FakeWeChatState, task_id: str, userid: str, key: str, *, at: int | None = None) -> str:
    """The plaintext of the template_card_event WeCom sends when ``userid`` clicks the button ``key`` of the
    card ``task_id`` (with a fresh response_code, usable once)."""
    card = cards_of(state).cards[task_id]
    return render_xml({
        "ToUserName": state.corp_id, "FromUserName": userid, "CreateTime": at or int(time.time()),
        "MsgType": "event", "Event": "template_card_event", "EventKey": key, "TaskId": task_id,
        "CardType": card.card_type, "ResponseCode": _issue_code(state, task_id), "AgentID": state.agent_id})


async def send_card_click(state: FakeWeChatState, callback_url: str, sim: WeComSimulator, *, task_id: str,
                          userid: str, key: str, at: int | None = None) -> int:
    """POST the click's callback to the app's WeCom callback URL, encrypted and signed; the HTTP status."""
    req = sim.post(card_click_xml(state, task_id, userid, key, at=at))
    async with aiohttp.ClientSession() as http, http.post(f"{callback_url}?{req.query}", data=req.body) as resp:
        await resp.read()
        return resp.status


def _issue_code(state: FakeWeChatState, task_id: str) -> str:
    code = f"RC-{secrets.token_hex(12)}"
    cards_of(state).codes[code] = ResponseCode(task_id, state.clock())
    return code


def _within_limits(cards: CardState, users: list[str], now: float) -> bool:
    """Count the message against every recipient; False (dropped) when one of them is over a limit."""
    over = False
    for user in users:
        hits = cards.hits.setdefault(user, deque())
        while hits and hits[0] <= now - 3600:
            hits.popleft()
        last_minute = sum(1 for t in hits if t > now - 60)
        over = over or last_minute >= cards.per_minute or len(hits) >= cards.per_hour
    if over:
        return False
    for user in users:
        cards.hits[user].append(now)
    return True


def _check_template_card(cards: CardState, card: Any) -> None:
    if not isinstance(card, dict) or card.get("card_type") not in CARD_TYPES:
        raise ApiError(INVALID, "invalid parameter: card_type")
    kind = card["card_type"]
    title = card.get("main_title") if isinstance(card.get("main_title"), dict) else {}
    if kind == "text_notice":
        if not title.get("title") and not card.get("sub_title_text"):
            raise ApiError(INVALID, "invalid parameter: main_title.title or sub_title_text required")
        action = card.get("card_action")
        if not isinstance(action, dict) or action.get("type") not in (1, 2) or (
                action["type"] == 1 and not action.get("url")):
            raise ApiError(INVALID, "invalid parameter: card_action required")
    elif not title.get("title"):
        raise ApiError(INVALID, "invalid parameter: main_title.title required")
    if kind in INTERACTIVE or "action_menu" in card:
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise ApiError(INVALID, "invalid parameter: task_id")
        if task_id in cards.cards:
            raise ApiError(INVALID, "invalid parameter: task_id duplicated")
    if kind == "button_interaction":
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            raise ApiError(INVALID, "invalid parameter: button_list")
        for button in buttons:
            if not isinstance(button, dict) or not button.get("text"):
                raise ApiError(INVALID, "invalid parameter: button_list.text")
            if button.get("type", 0) == 1 and not button.get("url"):
                raise ApiError(INVALID, "invalid parameter: button_list.url")
            if button.get("type", 0) == 0 and not (button.get("key") and len(str(button["key"]).encode()) <= 1024):
                raise ApiError(INVALID, "invalid parameter: button_list.key")
    for row in card.get("horizontal_content_list") or []:
        if not isinstance(row, dict) or not row.get("keyname"):
            raise ApiError(INVALID, "invalid parameter: horizontal_content_list.keyname")
    if len(card.get("horizontal_content_list") or []) > 6:
        raise ApiError(INVALID, "invalid parameter: horizontal_content_list")


def _check_textcard(card: Any) -> None:
    if not isinstance(card, dict) or not all(isinstance(card.get(k), str) and card[k] for k in
                                             ("title", "description", "url")):
        raise ApiError(INVALID, "invalid parameter: textcard title, description and url required")
    if len(card["title"].encode()) > 128 or len(card["description"].encode()) > 512:
        raise ApiError(INVALID, "invalid parameter: textcard title over 128 or description over 512 bytes")
