"""The server's secret keys (``server.secret_key``) and the subkey each purpose derives from them.

The first key signs and encrypts; every key verifies and decrypts, so rotating means putting a new key first
and keeping the old one behind it until what it issued has expired. Each purpose has its own subkey
(HKDF-SHA256), so a value minted for one use never passes as another, and no subkey reveals another one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import lru_cache, partial

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12  # AES-GCM's standard nonce; random per message (far below the 2^32 messages per key limit)


class Purpose(StrEnum):
    FORM_COOKIE = "form-cookie"  # the H5 form session cookie (encrypted)
    FORM_CSRF = "form-csrf"  # CSRF tokens of the H5 forms
    OAUTH_STATE = "oauth-state"  # the OA web OAuth ``state``
    TRACKED_LINK = "tracked-link"  # /c/<token> (encrypted)
    MP_SESSION = "mp-session"  # hashes of mini-program session tokens
    TOMBSTONE = "tombstone"  # keyed hashes of erased identities
    SUBMISSION_KEY = "submission-key"  # hashes of mini-program submission idempotency keys
    RATE_LIMIT = "rate-limit"  # hashes of client addresses and OpenIDs in the rate-limit counters
    LOGIN_LINK = "login-link"  # reserved for console login links
    CONSOLE_SESSION = "console-session"  # Redis keys of console sessions (hashes of the cookie)
    CONSOLE_CSRF = "console-csrf"  # the console sign-in form's CSRF token (before there is a session)


def _derive(secret: bytes, purpose: Purpose) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"leadrelay/{purpose.value}".encode()).derive(secret)


class KeyRing:
    """Subkeys per purpose, the current key's first. Built once per set of keys (see ``keyring_for``)."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("a key ring needs at least one key")
        self._keys = {p: tuple(_derive(s, p) for s in secrets) for p in Purpose}
        self._aeads = {p: tuple(AESGCM(k) for k in keys) for p, keys in self._keys.items()}

    def __repr__(self) -> str:  # never the keys, whatever logs the config
        return f"KeyRing({len(self._keys[Purpose.TOMBSTONE])} keys)"

    def subkeys(self, purpose: Purpose) -> tuple[bytes, ...]:
        return self._keys[purpose]

    def mac(self, purpose: Purpose, message: bytes) -> bytes:
        """HMAC-SHA256 with the current key."""
        return hmac.new(self._keys[purpose][0], message, hashlib.sha256).digest()

    def verify_mac(self, purpose: Purpose, message: bytes, given: bytes) -> bool:
        """``given`` (possibly truncated, at least 16 bytes) is a MAC of ``message`` under any key."""
        if len(given) < 16:
            return False
        found = False
        for key in self._keys[purpose]:  # no early exit: the time taken says nothing about which key matched
            found |= hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest()[:len(given)], given)
        return found

    def digests(self, purpose: Purpose, message: str) -> list[str]:
        """Keyed hashes (hex) of ``message``, one per key, the current key's first: store the first, look up all."""
        return [hmac.new(k, message.encode(), hashlib.sha256).hexdigest() for k in self._keys[purpose]]

    def digest(self, purpose: Purpose, message: str) -> str:
        return self.digests(purpose, message)[0]

    def hasher(self, purpose: Purpose) -> Callable[[str], list[str]]:
        """``digests`` for one purpose, for code that must not see the ring (storage/repos/tombstones.py)."""
        return partial(self.digests, purpose)

    def seal(self, purpose: Purpose, plaintext: bytes) -> bytes:
        """Authenticated encryption (AES-256-GCM) with the current key: nonce + ciphertext + tag."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aeads[purpose][0].encrypt(nonce, plaintext, purpose.value.encode())

    def open(self, purpose: Purpose, sealed: bytes) -> bytes | None:
        """The plaintext, or None when no key of the ring sealed it for this purpose (or it was altered)."""
        if len(sealed) < _NONCE_BYTES + 16:
            return None
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for aead in self._aeads[purpose]:
            try:
                return aead.decrypt(nonce, body, purpose.value.encode())
            except InvalidTag:
                continue
        return None


@lru_cache(maxsize=32)  # bounded: every sandbox config without a key brings an ephemeral key of its own
def keyring_for(keys: tuple[str, ...]) -> KeyRing:
    """One ring per configured key list: HKDF runs once, not on every request."""
    return KeyRing([k.encode() for k in keys])
