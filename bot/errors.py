"""The bot layer's exception tree. Central handlers map these to HTTP answers."""

from __future__ import annotations


class LeadRelayError(Exception):
    """Base of every error LeadRelay raises on purpose."""


class ConfigError(LeadRelayError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class CallbackRejected(LeadRelayError):
    """A callback request we refuse; nothing of it is stored and no handler runs."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadSignature(CallbackRejected):
    status = 403


class StaleTimestamp(CallbackRejected):
    status = 403


class WrongReceiver(CallbackRejected):
    """The decrypted ReceiveId is not our app_id / corp_id."""

    status = 403


class MalformedPayload(CallbackRejected):
    status = 400


class PayloadTooLarge(CallbackRejected):
    status = 413


class WeChatAPIError(LeadRelayError):
    """WeChat / WeCom answered an outbound call with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
