"""Tracked links: ``/c/<token>`` where the token names the content, the recipient and the source, signed so
that it cannot be forged or altered (HMAC-SHA256 with the server's signing key)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

_SIG_BYTES = 16
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"leadrelay-links:" + key).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def token(self, target: LinkTarget) -> str:
        fields = (target.content_id, _KIND_CODES[target.recipient_kind], target.recipient, target.source_code)
        payload = "\x1f".join(fields).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, token: str) -> LinkTarget:
        if len(token) > 1024 or token.count(".") != 1:
            raise BadLink("malformed token")
        body, sig = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(sig)
        except (binascii.Error, ValueError) as exc:
            raise BadLink("malformed token") from exc
        if not hmac.compare_digest(self._sign(payload), given):
            raise BadLink("bad signature")
        parts = payload.decode("utf-8", "replace").split("\x1f")
        if len(parts) != 4 or parts[1] not in RECIPIENT_KINDS or not parts[0] or not parts[2]:
            raise BadLink("malformed token")
        return LinkTarget(parts[0], RECIPIENT_KINDS[parts[1]], parts[2], parts[3])
