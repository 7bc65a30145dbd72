"""URL-safe base64 without padding, for tokens and cookies that travel in URLs and headers.

Decoding is strict because tokens are compared and spent by their text: a value has exactly one spelling, so a
second spelling of the same bytes (other padding bits, the standard alphabet, stray characters) is refused.
"""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """The bytes of ``text``; ValueError (binascii.Error is one) for anything but the canonical spelling."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if encode(data) != text:
        raise ValueError("not canonical base64")
    return data
