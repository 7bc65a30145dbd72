"""bot/crypto: the key ring (subkeys per purpose, rotation) and the strength check of configured keys."""

from __future__ import annotations

import secrets

import pytest

from bot.crypto.keyring import KeyRing, Purpose, keyring_for
from bot.crypto.strength import key_problem

OLD = b"old-key-0123456789abcdefghijklmnopqrstuvwxyz"
NEW = b"new-key-0123456789abcdefghijklmnopqrstuvwxyz"


def test_the_first_key_signs_and_encrypts_and_every_key_verifies():
    before, rotated = KeyRing([OLD]), KeyRing([NEW, OLD])
    message = b"form|sid|nonce|1700000000"
    old_mac = before.mac(Purpose.FORM_CSRF, message)
    assert rotated.verify_mac(Purpose.FORM_CSRF, message, old_mac)
    assert rotated.mac(Purpose.FORM_CSRF, message) != old_mac  # the new key signs
    assert not before.verify_mac(Purpose.FORM_CSRF, message, rotated.mac(Purpose.FORM_CSRF, message))
    sealed = before.seal(Purpose.TRACKED_LINK, b"payload")
    assert rotated.open(Purpose.TRACKED_LINK, sealed) == b"payload"
    assert before.open(Purpose.TRACKED_LINK, rotated.seal(Purpose.TRACKED_LINK, b"payload")) is None
    # Digests: the current key's first, the old key's still among them (tombstones written before rotation).
    assert rotated.digests(Purpose.TOMBSTONE, "x")[1] == before.digest(Purpose.TOMBSTONE, "x")
    assert rotated.digest(Purpose.TOMBSTONE, "x") != before.digest(Purpose.TOMBSTONE, "x")


def test_purposes_never_cross():
    ring = KeyRing([OLD])
    subkeys = {ring.subkeys(p)[0] for p in Purpose}
    assert len(subkeys) == len(Purpose) and OLD not in subkeys
    sealed = ring.seal(Purpose.FORM_COOKIE, b"openid")
    assert ring.open(Purpose.FORM_COOKIE, sealed) == b"openid"
    assert all(ring.open(p, sealed) is None for p in Purpose if p != Purpose.FORM_COOKIE)
    mac = ring.mac(Purpose.FORM_CSRF, b"m")
    assert not ring.verify_mac(Purpose.OAUTH_STATE, b"m", mac)
    assert ring.digest(Purpose.TOMBSTONE, "m") != ring.digest(Purpose.MP_SESSION, "m")


def test_tampering_truncation_and_short_macs_are_refused():
    ring = KeyRing([OLD])
    sealed = bytearray(ring.seal(Purpose.TRACKED_LINK, b"content|o|openid"))
    for i in range(len(sealed)):
        altered = bytearray(sealed)
        altered[i] ^= 0x01
        assert ring.open(Purpose.TRACKED_LINK, bytes(altered)) is None
    assert ring.open(Purpose.TRACKED_LINK, bytes(sealed[:-1])) is None
    assert ring.open(Purpose.TRACKED_LINK, b"") is None
    mac = ring.mac(Purpose.FORM_CSRF, b"m")
    assert ring.verify_mac(Purpose.FORM_CSRF, b"m", mac[:16])
    assert not ring.verify_mac(Purpose.FORM_CSRF, b"m", mac[:15])  # too short to mean anything
    assert not ring.verify_mac(Purpose.FORM_CSRF, b"n", mac)


def test_the_ring_never_shows_its_keys_and_is_built_once_per_key_list():
    ring = keyring_for(("a" * 3, "b" * 3))
    assert "aaa" not in repr(ring) and "bbb" not in repr(ring)
    assert keyring_for(("a" * 3, "b" * 3)) is ring
    with pytest.raises(ValueError):
        KeyRing([])


@pytest.mark.parametrize("key", [
    secrets.token_urlsafe(32), secrets.token_urlsafe(48), secrets.token_hex(32),
    secrets.token_bytes(32).hex().upper(), "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR+/w==",
])
def test_random_keys_of_32_bytes_or_more_are_accepted(key):
    assert key_problem(key) is None


@pytest.mark.parametrize(("key", "says"), [
    (secrets.token_urlsafe(24), "too short"),
    (secrets.token_hex(31), "too short"),  # 62 hex characters: 248 bits
    ("a" * 64, "random"),
    ("abcdefghij" * 7, "random"),
    ("0123456789abcdef" * 4, "random"),
    (secrets.token_urlsafe(40) + "zzzzzzzz", "random"),
    ("CHANGE_ME_" + secrets.token_urlsafe(48), "placeholder"),
    (secrets.token_urlsafe(30) + " " + secrets.token_urlsafe(30), "spaces"),
])
def test_weak_keys_are_refused_with_the_reason(key, says):
    problem = key_problem(key)
    assert problem is not None and says in problem
