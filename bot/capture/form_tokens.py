"""The H5 forms' tokens: the session cookie (encrypted), CSRF tokens and the OAuth ``state`` (signed).

Each uses its own subkey of the server's key ring (bot/crypto/keyring.py), so a value minted for one use (say a
CSRF token) can never be replayed as another (an OAuth state). The cookie is sealed with AES-GCM: the visitor,
or whoever sees the cookie, reads no OpenID in it. Cookies of the earlier signed-only format are treated as
absent (a new session starts).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from bot.crypto import b64
from bot.crypto.keyring import KeyRing, Purpose

COOKIE_NAME = "lr_form"
COOKIE_MAX_AGE_S = 30 * 24 * 3600  # progressive profiling across visits needs the bound OpenID to last
CSRF_TTL_S = 2 * 3600  # a form left open longer is refreshed, not submitted
STATE_TTL_S = 600  # WeChat's code itself lives 5 minutes; the round trip must not take longer than this
_COOKIE_VERSION = "2."


def _mac(ring: KeyRing, purpose: Purpose, message: str, length: int) -> str:
    return b64.encode(ring.mac(purpose, message.encode())[:length])


def _mac_ok(ring: KeyRing, purpose: Purpose, message: str, given: str) -> bool:
    try:
        raw = b64.decode(given)
    except ValueError:
        return False
    return ring.verify_mac(purpose, message.encode(), raw)  # canonical only: a token is spent by its text


@dataclass(frozen=True, slots=True)
class FormSession:
    sid: str
    openid: str | None = None  # the OA OpenID bound by web OAuth
    unionid: str | None = None
    bound_ms: int | None = None  # when the OpenID was bound (ms since the epoch): an erasure after it voids it

    @classmethod
    def new(cls) -> FormSession:
        return cls(sid=secrets.token_urlsafe(16))

    @classmethod
    def bound(cls, sid: str, openid: str, unionid: str | None) -> FormSession:
        return cls(sid, openid, unionid, int(time.time() * 1000))

    def anonymous(self) -> FormSession:
        """The same browser session without the bound person."""
        return FormSession(self.sid)


def encode_session(key: KeyRing, session: FormSession) -> str:
    data = {"s": session.sid, "o": session.openid, "u": session.unionid, "b": session.bound_ms}
    plain = json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":")).encode()
    return _COOKIE_VERSION + b64.encode(key.seal(Purpose.FORM_COOKIE, plain))


def decode_session(key: KeyRing, value: str | None) -> FormSession | None:
    """The session in a cookie, or None when it is missing, malformed, of the old format or not sealed by us."""
    if not value or len(value) > 1024 or not value.startswith(_COOKIE_VERSION):
        return None
    try:
        plain = key.open(Purpose.FORM_COOKIE, b64.decode(value[len(_COOKIE_VERSION):]))
        data = json.loads(plain) if plain is not None else None
        sid, openid, unionid, bound = data["s"], data.get("o"), data.get("u"), data.get("b")
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(sid, str) or not all(v is None or isinstance(v, str) for v in (openid, unionid)):
        return None
    if openid is not None and not isinstance(bound, int):
        return None
    return FormSession(sid, openid, unionid, bound)


def _timed(key: KeyRing, purpose: Purpose, bound: str, now: float | None, length: int) -> str:
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_mac(key, purpose, f'{bound}|{issued}', length)}"


def _check_timed(key: KeyRing, purpose: Purpose, bound: str, token: str | None, ttl_s: int,
                 now: float | None) -> bool:
    if not token or len(token) > 128:
        return False
    issued, _, mac = token.partition(".")
    if not (issued.isascii() and issued.isdigit()) or not _mac_ok(key, purpose, f"{bound}|{issued}", mac):
        return False
    age = (time.time() if now is None else now) - int(issued)
    return -60 <= age <= ttl_s  # a little clock skew between processes is tolerated


def csrf_token(key: KeyRing, form_id: str, sid: str, now: float | None = None) -> str:
    """Bound to one form and one browser session: useless on another form or in another browser. The
    nonce makes every rendered page's token distinct, so spending one (a submit) spends only that page."""
    nonce = secrets.token_urlsafe(6)
    return f"{nonce}~{_timed(key, Purpose.FORM_CSRF, f'{form_id}|{sid}|{nonce}', now, 32)}"


def check_csrf(key: KeyRing, form_id: str, sid: str, token: str | None, now: float | None = None) -> bool:
    nonce, sep, rest = (token or "").partition("~")
    return bool(sep) and _check_timed(key, Purpose.FORM_CSRF, f"{form_id}|{sid}|{nonce}", rest, CSRF_TTL_S, now)


def oauth_state(key: KeyRing, form_id: str, sid: str, now: float | None = None) -> str:
    """WeChat limits ``state`` to 128 bytes; a short MAC keeps it well under."""
    return _timed(key, Purpose.OAUTH_STATE, f"{form_id}|{sid}", now, 18)


def check_oauth_state(key: KeyRing, form_id: str, sid: str, state: str | None, now: float | None = None) -> bool:
    return _check_timed(key, Purpose.OAUTH_STATE, f"{form_id}|{sid}", state, STATE_TTL_S, now)


def csrf_fingerprint(token: str) -> str:
    """What marks a CSRF token as spent in Redis (a double submit is refused)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]
