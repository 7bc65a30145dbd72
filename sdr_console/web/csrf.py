"""CSRF tokens of the console: every state-changing request carries one, in the ``csrf_token`` form field or
the ``X-CSRF-Token`` header (htmx sends it from ``hx-headers`` on <body>).

Signed in, the token is the session's own random token (stored with the session in Redis). Before sign-in
there is no session, so the sign-in form uses a signed double-submit token: a random nonce in a cookie scoped to
/console/login, and its MAC (CONSOLE_CSRF subkey) in the form; another site can neither read the cookie nor
forge the MAC. The SameSite=Lax session cookie is a second line, not the only one.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from bot.crypto import b64
from bot.crypto.keyring import KeyRing, Purpose
from sdr_console.web.forms import read_form, text_field

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "lr_console_login"
LOGIN_PATH = "/console/login"
_MAX_LEN = 256


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_token(ring: KeyRing, nonce: str) -> str:
    return b64.encode(ring.mac(Purpose.CONSOLE_CSRF, nonce.encode()))


def login_token_ok(ring: KeyRing, nonce: str | None, given: str | None) -> bool:
    if not nonce or not given or len(nonce) > _MAX_LEN or len(given) > _MAX_LEN or not nonce.isascii():
        return False
    try:
        raw = b64.decode(given)
    except ValueError:
        return False
    return ring.verify_mac(Purpose.CONSOLE_CSRF, nonce.encode(), raw)


def session_token_ok(expected: str, given: str | None) -> bool:
    if not given or len(given) > _MAX_LEN or not given.isascii():
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def given_token(request: web.Request) -> str | None:
    """The token a request carries: the header first (htmx, scripts), else the form field."""
    header = request.headers.get(HEADER)
    if header:
        return header
    form = await read_form(request)
    return text_field(form, FIELD) if form is not None else None
