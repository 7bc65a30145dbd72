"""Tracked links: ``/c/<token>``, the token naming the content, the recipient, the source and when it was issued.

The token is sealed (AES-256-GCM with the key ring's link subkey): it cannot be forged or altered, and whoever
the link is forwarded to reads nothing in it, the recipient's OpenID least of all. ``2.`` marks the format.

Links of the earlier format (readable base64 + HMAC under a key derivable from ``wechat.token``) are still
recognised so that old messages keep leading to their content, but they can have been forged by anyone who
knew the callback token, so they carry no ``issued_ms`` and record nothing (bot/capture/tracked.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.crypto import b64
from bot.crypto.keyring import KeyRing, Purpose

if TYPE_CHECKING:
    from bot.config.core import Config

_VERSION = "2."
_MAX_TOKEN = 1024
_SEP = "\x1f"
_LEGACY_SIG_BYTES = 16
# Recipient kinds, short to keep URLs short: OA OpenID, WeCom external_userid, mini-program OpenID, lead id.
RECIPIENT_KINDS = {"o": "oa_openid", "w": "wecom_external", "m": "mp_openid", "l": "lead"}
_KIND_CODES = {v: k for k, v in RECIPIENT_KINDS.items()}


class BadLink(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LinkTarget:
    content_id: str
    recipient_kind: str  # a value of RECIPIENT_KINDS
    recipient: str
    source_code: str = ""
    issued_ms: int | None = None  # None: a link of the old, untrusted format


def _unb64(text: str) -> bytes:
    try:
        return b64.decode(text)
    except ValueError as exc:
        raise BadLink("malformed token") from exc


def _fields(payload: bytes) -> list[str]:
    try:
        parts = payload.decode("utf-8").split(_SEP)
    except UnicodeDecodeError as exc:
        raise BadLink("malformed token") from exc
    if len(parts) != 4 or parts[1] not in RECIPIENT_KINDS or not parts[0] or not parts[2]:
        raise BadLink("malformed token")
    return parts


class LinkSigner:
    def __init__(self, ring: KeyRing, legacy_keys: Sequence[bytes] = ()) -> None:
        self._ring = ring
        self._legacy = tuple(legacy_keys)

    @classmethod
    def from_config(cls, config: Config) -> LinkSigner:
        return cls(config.keyring, legacy_link_keys(config))

    def token(self, target: LinkTarget, now_ms: int | None = None) -> str:
        issued = int(time.time() * 1000) if now_ms is None else now_ms
        fields = (target.content_id, _KIND_CODES[target.recipient_kind], target.recipient, target.source_code)
        payload = issued.to_bytes(6, "big") + _SEP.join(fields).encode()
        return _VERSION + b64.encode(self._ring.seal(Purpose.TRACKED_LINK, payload))

    def verify(self, token: str) -> LinkTarget:
        if len(token) > _MAX_TOKEN:
            raise BadLink("malformed token")
        if not token.startswith(_VERSION):
            return self._verify_legacy(token)
        plain = self._ring.open(Purpose.TRACKED_LINK, _unb64(token[len(_VERSION):]))
        if plain is None or len(plain) < 7:
            raise BadLink("bad token")
        parts = _fields(plain[6:])
        return LinkTarget(parts[0], RECIPIENT_KINDS[parts[1]], parts[2], parts[3],
                          issued_ms=int.from_bytes(plain[:6], "big"))

    def _verify_legacy(self, token: str) -> LinkTarget:
        if token.count(".") != 1:
            raise BadLink("malformed token")
        body, sig = token.split(".")
        payload, given = _unb64(body), _unb64(sig)
        if len(given) != _LEGACY_SIG_BYTES or not any(
                hmac.compare_digest(hmac.new(k, payload, hashlib.sha256).digest()[:_LEGACY_SIG_BYTES], given)
                for k in self._legacy):
            raise BadLink("bad signature")
        parts = _fields(payload)
        return LinkTarget(parts[0], RECIPIENT_KINDS[parts[1]], parts[2], parts[3], issued_ms=None)


def legacy_link_keys(config: Config) -> list[bytes]:
    """The keys links were signed with before key rings: derived from wechat.token, or the raw secret_key."""
    signing = [hashlib.sha256(b"leadrelay-signing:" + config.wechat.token.encode()).digest()]
    signing += [k.encode() for k in config.server.secret_key]
    return [hashlib.sha256(b"leadrelay-links:" + k).digest() for k in signing]
