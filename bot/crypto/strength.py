"""Is a configured secret key strong enough: at least 256 bits of randomness, judged from its text.

A key is used as text (its UTF-8 bytes feed HKDF), so any encoding works; what matters is how much randomness
the text can hold. Hex carries 4 bits a character, base64 and its URL-safe form 6, so a key must have at least
64 hex or 43 base64 characters. Keys that are obviously not random (a repeated character or pattern, the
placeholder of the example files) are refused whatever their length.
"""

from __future__ import annotations

import string

GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
MIN_BITS = 256
_HEX = set(string.hexdigits)
_BASE64 = set(string.ascii_letters + string.digits + "+/-_")
_MIN_DISTINCT = 10  # 64 random hex characters show all 16 digits but for a 1e-9 chance of fewer than 10


def _bits_per_char(text: str) -> int:
    chars = set(text)
    if chars <= _HEX:
        return 4
    return 6  # base64 and anything richer: counting printable ASCII as 6 bits stays on the safe side


def key_problem(key: str) -> str | None:
    """Why ``key`` is not acceptable as a secret key, or None when it is."""
    text = key.rstrip("=")  # base64 padding carries nothing
    if "change_me" in text.lower() or "changeme" in text.lower():
        return f"is still the example placeholder; generate one with {GENERATE}"
    if any(c.isspace() or not c.isprintable() for c in text):
        return "must not contain spaces or control characters"
    bits = len(text) * _bits_per_char(text)
    if bits < MIN_BITS:
        return (f"is too short: {len(text)} characters carry at most {bits} bits, at least {MIN_BITS} are needed "
                f"(64 hex or 43 base64 characters); generate one with {GENERATE}")
    if len(set(text)) < _MIN_DISTINCT or _periodic(text) or _longest_run(text) >= 8:
        return f"does not look random (repeated characters or a pattern); generate one with {GENERATE}"
    return None


def _periodic(text: str) -> bool:
    """``text`` repeats a unit at most half its length (``abcabcab``): shifted by that unit, it matches itself."""
    return any(text[p:] == text[:-p] for p in range(1, len(text) // 2 + 1))


def _longest_run(text: str) -> int:
    longest = run = 0
    previous = ""
    for char in text:
        run = run + 1 if char == previous else 1
        longest, previous = max(longest, run), char
    return longest
