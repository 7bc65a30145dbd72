"""Sign-in links for the sales mobile inbox in sandbox mode (``leadrelay user login-link NAME``).

Without WeCom OAuth (sandbox: no live WeCom app to ask who the visitor is), a salesperson signs in with a link
``{server.public_url}/m/login?token=...``. The token is sealed (AES-256-GCM under the key ring's LOGIN_LINK
subkey, so it can be neither forged nor read: the user id inside is not visible), expires after
``handoff.login_link_ttl_s`` and works once: its random nonce is claimed in Redis with SET NX (and a TTL as long
as the token could still be valid), so a second use is refused in every process.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bot.crypto import b64
from bot.crypto.keyring import KeyRing, Purpose

PATH = "/m/login"
_VERSION = "1."
_NONCE_BYTES = 16
_MAX_TOKEN = 200


class LinkState(Enum):
    OK = "ok"
    INVALID = "invalid"  # forged, altered, sealed by an unknown key, or not a token at all
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class LoginGrant:
    user_id: int
    expires_at: int  # epoch seconds
    nonce: bytes


def issue(ring: KeyRing, user_id: int, *, now: int, ttl_s: int) -> str:
    payload = user_id.to_bytes(8, "big") + (now + ttl_s).to_bytes(8, "big") + os.urandom(_NONCE_BYTES)
    return _VERSION + b64.encode(ring.seal(Purpose.LOGIN_LINK, payload))


def link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}?token={token}"


def verify(ring: KeyRing, token: str | None, *, now: int) -> tuple[LinkState, LoginGrant | None]:
    """What the token says, when this server sealed it and it has not expired (used or not: see ``claim``)."""
    if not token or len(token) > _MAX_TOKEN or not token.isascii() or not token.startswith(_VERSION):
        return LinkState.INVALID, None
    try:
        sealed = b64.decode(token[len(_VERSION):])
    except ValueError:
        return LinkState.INVALID, None
    plain = ring.open(Purpose.LOGIN_LINK, sealed)
    if plain is None or len(plain) != 16 + _NONCE_BYTES:
        return LinkState.INVALID, None
    grant = LoginGrant(int.from_bytes(plain[:8], "big"), int.from_bytes(plain[8:16], "big"), plain[16:])
    if now >= grant.expires_at:
        return LinkState.EXPIRED, None
    return LinkState.OK, grant


async def claim(redis: Any, key_prefix: str, grant: LoginGrant, *, now: int) -> bool:
    """True for the first use of this link (in any process); False once it was used. The key names a hash of
    the nonce and lives until the token would have expired anyway."""
    digest = hashlib.sha256(grant.nonce).hexdigest()[:40]
    ttl = max(1, grant.expires_at - now + 60)
    return bool(await redis.set(f"{key_prefix}mobile:login_link:{digest}", b"1", nx=True, ex=ttl))
