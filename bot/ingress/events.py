"""An accepted callback as the rest of the bot sees it, and the key that makes retries harmless."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import MalformedPayload

OA = "oa"
WECOM = "wecom"

_REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
# Fields that tell two WeCom external-contact events of the same second apart (FromUserName is "sys").
_WECOM_DISCRIMINATORS = ("ChangeType", "UserID", "ExternalUserID", "State")


@dataclass(frozen=True, slots=True)
class InboundEvent:
    source: str  # OA or WECOM
    app_id: str  # the OA app_id or the WeCom corp_id the callback was addressed to
    fields: dict[str, Any] = field(repr=False)

    @property
    def msg_type(self) -> str:
        return str(self.fields["MsgType"]).lower()

    @property
    def event(self) -> str | None:
        value = self.fields.get("Event")
        return str(value).lower() if value is not None and self.msg_type == "event" else None

    @property
    def from_user(self) -> str:
        return str(self.fields["FromUserName"])

    @property
    def to_user(self) -> str:
        return str(self.fields["ToUserName"])

    @property
    def actor(self) -> str:
        """Whom the event is about, for ordering: WeCom contact events come from "sys" about a customer."""
        if self.event == "change_external_contact" and self.fields.get("ExternalUserID"):
            return str(self.fields["ExternalUserID"])
        return self.from_user

    @property
    def create_time(self) -> int:
        return int(self.fields["CreateTime"])

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.fields.get(name)
        return default if value is None else str(value)

    @property
    def dedup_key(self) -> str:
        """MsgId for messages; sender + time + event + key (+ WeCom contact fields) for events."""
        if self.msg_type != "event" and self.fields.get("MsgId"):
            return f"{self.source}:{self.app_id}:msg:{self.fields['MsgId']}"
        parts = [self.from_user, str(self.create_time), self.event or self.msg_type, self.get("EventKey", "")]
        if self.source == WECOM:
            parts += [self.get(name, "") or "" for name in _WECOM_DISCRIMINATORS]
        return f"{self.source}:{self.app_id}:evt:" + "|".join(parts)


def build_event(source: str, app_id: str, fields: dict[str, Any]) -> InboundEvent:
    for name in _REQUIRED:
        value = fields.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedPayload(f"missing or empty <{name}>")
    if not (fields["CreateTime"].isascii() and fields["CreateTime"].isdigit()) or len(fields["CreateTime"]) > 12:
        raise MalformedPayload("<CreateTime> must be a unix timestamp")
    if len(fields["FromUserName"]) > 128:
        raise MalformedPayload("<FromUserName> is too long")
    if fields["MsgType"].lower() == "event" and not isinstance(fields.get("Event"), str):
        raise MalformedPayload("event without <Event>")
    return InboundEvent(source=source, app_id=app_id, fields=fields)
