"""bot/capture/links.py: sealed tracked-link tokens (opaque, tamper-proof, rotatable) and the old format."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from bot.capture.links import BadLink, LinkSigner, LinkTarget
from bot.crypto.keyring import KeyRing

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
RING = KeyRing([b"link-test-key-0123456789abcdefghijklmnopq"])
TOKEN = "leadrelay-test-token"
LEGACY_KEY = hashlib.sha256(b"leadrelay-links:" + hashlib.sha256(b"leadrelay-signing:" + TOKEN.encode()).digest()
                            ).digest()
TARGET = LinkTarget("pricing-guide", "oa_openid", OPENID, "expo2026")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def old_format(target: LinkTarget, key: bytes = LEGACY_KEY) -> str:
    """A link as the previous release minted it: readable payload, HMAC keyed from wechat.token."""
    payload = "\x1f".join((target.content_id, "o", target.recipient, target.source_code)).encode()
    return f"{_b64(payload)}.{_b64(hmac.new(key, payload, hashlib.sha256).digest()[:16])}"


def test_a_token_round_trips_with_its_issue_time():
    before = int(time.time() * 1000)
    target = LinkSigner(RING).verify(LinkSigner(RING).token(TARGET))
    assert (target.content_id, target.recipient_kind, target.recipient, target.source_code) == (
        "pricing-guide", "oa_openid", OPENID, "expo2026")
    assert before <= target.issued_ms <= int(time.time() * 1000)


def test_a_token_shows_no_identifier_and_stays_short():
    token = LinkSigner(RING).token(TARGET)
    assert token.startswith("2.") and len(token) < 130
    for secret in (OPENID, "pricing-guide", "expo2026"):
        assert secret not in token
        for shift in range(3):  # the base64 of the identifier at every alignment
            assert base64.urlsafe_b64encode(b"x" * shift + secret.encode()).decode()[4:16] not in token
    assert LinkSigner(RING).token(TARGET) != token  # random nonce: two links to one person are not linkable


def test_tampered_truncated_or_foreign_tokens_are_refused():
    signer = LinkSigner(RING)
    token = signer.token(TARGET)
    for i in range(2, len(token)):
        altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        with pytest.raises(BadLink):
            signer.verify(altered)
    other = LinkSigner(KeyRing([b"another-key-0123456789abcdefghijklmnopqr"]))
    for bad in (token[:-2], token + "A", token + "=", "2.", "2." + "A" * 60, other.token(TARGET), "x" * 2000,
                "garbage", "a.b", "2.!!!!"):
        with pytest.raises(BadLink):
            signer.verify(bad)


def test_rotation_old_key_links_still_open_new_ones_use_the_new_key():
    old = LinkSigner(RING)
    rotated = LinkSigner(KeyRing([b"new-link-key-0123456789abcdefghijklmnopq",
                                  b"link-test-key-0123456789abcdefghijklmnopq"]))
    assert rotated.verify(old.token(TARGET)).recipient == OPENID
    with pytest.raises(BadLink):
        old.verify(rotated.token(TARGET))


def test_old_format_links_are_recognised_but_untrusted():
    signer = LinkSigner(RING, [LEGACY_KEY])
    target = signer.verify(old_format(TARGET))
    assert target.content_id == "pricing-guide" and target.issued_ms is None  # nothing will be recorded
    body, sig = old_format(TARGET).split(".")
    for bad in (f"{body}.{sig[:-2]}AA", f"{body[:-3]}xyz.{sig}", old_format(TARGET, b"k" * 32)):
        with pytest.raises(BadLink):
            signer.verify(bad)
    with pytest.raises(BadLink):
        LinkSigner(RING).verify(old_format(TARGET))  # without the legacy keys, not even recognised
