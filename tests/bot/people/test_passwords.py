"""Password hashes: scrypt with a random salt, parameters in the stored string, unreadable hashes refused."""

from __future__ import annotations

from bot.people.passwords import N, P, R, hash_password, needs_rehash, verify_password


def test_a_password_verifies_and_nothing_else_does() -> None:
    stored = hash_password("正确的密码 horse")
    assert verify_password(stored, "正确的密码 horse")
    for wrong in ("正确的密码 horse ", "正确的密码 Horse", "", "x" * 1000):
        assert not verify_password(stored, wrong)
    assert "正确的密码" not in stored and "horse" not in stored


def test_each_hash_has_its_own_salt_and_says_its_parameters() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second and verify_password(second, "same")
    assert first.split("$")[:4] == ["scrypt", str(N), str(R), str(P)] and not needs_rehash(first)


def test_old_parameters_still_verify_and_ask_for_a_rehash() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"old", salt=salt, n=2**10, r=8, p=1, dklen=32)
    stored = f"scrypt${2**10}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password(stored, "old") and needs_rehash(stored)


def test_tampered_or_foreign_hashes_are_refused_without_raising() -> None:
    good = hash_password("pw")
    parts = good.split("$")
    bad = [
        "", "plain", "pw", "$".join(parts[:5]), good.replace("scrypt", "bcrypt", 1),
        "$".join([parts[0], str(2**30), *parts[2:]]),  # would allocate gigabytes
        "$".join([parts[0], "1000", *parts[2:]]),  # not a power of two
        "$".join([*parts[:4], "!!!", parts[5]]),  # not base64
        "$".join([*parts[:4], "", parts[5]]),  # no salt
        "$".join([parts[0], parts[1], "99", *parts[3:]]),
    ]
    for stored in bad:
        assert not verify_password(stored, "pw"), stored
        assert needs_rehash(stored)
