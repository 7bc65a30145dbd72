"""Signed values of the H5 forms: the session cookie, CSRF tokens and the OAuth ``state``.

All are HMAC-SHA256 with Config.signing_key, each with its own purpose prefix so a value minted for one
use (say a CSRF token) can never be replayed as another (an OAuth state). Nothing here is secret from the
visitor: the cookie is signed, not encrypted, and holds only a random session id and the bound OpenID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "lr_form"
COOKIE_MAX_AGE_S = 30 * 24 * 3600  # progressive profiling across visits needs the bound OpenID to last
CSRF_TTL_S = 2 * 3600  # a form left open longer is refreshed, not submitted
STATE_TTL_S = 600  # WeChat's code itself lives 5 minutes; the round trip must not take longer than this


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, message: str, length: int = 32) -> str:
    digest = hmac.new(key, f"{purpose}\x00{message}".encode(), hashlib.sha256).digest()
    return _b64(digest[:length])


@dataclass(frozen=True, slots=True)
class FormSession:
    sid: str
    openid: str | None = None  # the OA OpenID bound by web OAuth
    unionid: str | None = None

    @classmethod
    def new(cls) -> FormSession:
        return cls(sid=secrets.token_urlsafe(16))


def encode_session(key: bytes, session: FormSession) -> str:
    payload = _b64(json.dumps({"s": session.sid, "o": session.openid, "u": session.unionid},
                              separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, 'form-session', payload)}"


def decode_session(key: bytes, value: str | None) -> FormSession | None:
    """The session in a cookie, or None when it is missing, malformed or not signed by us."""
    if not value or len(value) > 1024 or "." not in value:
        return None
    payload, _, mac = value.partition(".")
    if not hmac.compare_digest(mac, _mac(key, "form-session", payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
        sid, openid, unionid = data["s"], data.get("o"), data.get("u")
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(sid, str) or not all(v is None or isinstance(v, str) for v in (openid, unionid)):
        return None
    return FormSession(sid, openid, unionid)


def _timed(key: bytes, purpose: str, bound: str, now: float | None, length: int) -> str:
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_mac(key, purpose, f'{bound}|{issued}', length)}"


def _check_timed(key: bytes, purpose: str, bound: str, token: str | None, ttl_s: int, now: float | None,
                 length: int) -> bool:
    if not token or len(token) > 128:
        return False
    issued, _, mac = token.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(mac, _mac(key, purpose, f"{bound}|{issued}", length)):
        return False
    age = (time.time() if now is None else now) - int(issued)
    return -60 <= age <= ttl_s  # a little clock skew between processes is tolerated


def csrf_token(key: bytes, form_id: str, sid: str, now: float | None = None) -> str:
    """Bound to one form and one browser session: useless on another form or in another browser. The
    nonce makes every rendered page's token distinct, so spending one (a submit) spends only that page."""
    nonce = secrets.token_urlsafe(6)
    return f"{nonce}~{_timed(key, 'form-csrf', f'{form_id}|{sid}|{nonce}', now, 32)}"


def check_csrf(key: bytes, form_id: str, sid: str, token: str | None, now: float | None = None) -> bool:
    nonce, sep, rest = (token or "").partition("~")
    return bool(sep) and _check_timed(key, "form-csrf", f"{form_id}|{sid}|{nonce}", rest, CSRF_TTL_S, now, 32)


def oauth_state(key: bytes, form_id: str, sid: str, now: float | None = None) -> str:
    """WeChat limits ``state`` to 128 bytes; a short MAC keeps it well under."""
    return _timed(key, "oa-oauth-state", f"{form_id}|{sid}", now, 18)


def check_oauth_state(key: bytes, form_id: str, sid: str, state: str | None, now: float | None = None) -> bool:
    return _check_timed(key, "oa-oauth-state", f"{form_id}|{sid}", state, STATE_TTL_S, now, 18)


def csrf_fingerprint(token: str) -> str:
    """What marks a CSRF token as spent in Redis (a double submit is refused)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]
