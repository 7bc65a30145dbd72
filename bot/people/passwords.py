"""Password hashes with the standard library's scrypt: no extra dependency, memory-hard, maintained by CPython.

A stored hash is ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``: the parameters travel with it, so raising
them later leaves old hashes verifiable (``needs_rehash`` says which to upgrade at the next sign-in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP: scrypt N=2^17,r=8,p=1 or the equivalent N=2^14,r=8,p=5 (16 MiB per hash, not 128).
N, R, P = 2**14, 8, 5
SALT_BYTES, KEY_BYTES = 16, 32
_MAXMEM = 64 * 1024 * 1024
_PREFIX = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    return "$".join((_PREFIX, str(N), str(R), str(P), _b64(salt), _b64(_derive(password, salt, N, R, P))))


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    # Bounds keep a tampered row from making verification allocate or spin without limit.
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and salt and digest):
        return None
    return n, r, p, salt, digest


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password or an unreadable stored hash."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = _derive(password, salt, n, r, p)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (N, R, P)
