"""Reading a console form post: whatever a browser (or an attacker) sends, a form or None, never an exception."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from leads.content import bad_text

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: web.Request) -> MultiDictProxy | None:
    """The posted fields; None for a body that is not a readable form (another content type, not UTF-8, an
    unknown charset, a broken multipart). aiohttp caches it: reading twice costs nothing."""
    if request.content_type not in FORM_TYPES:
        return None
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError):
        return None


def text_field(form: MultiDictProxy, name: str) -> str | None:
    """A text field, stripped; None when absent, a file, or text no column can take (NUL, lone surrogates)."""
    value = form.get(name)
    if not isinstance(value, str) or bad_text(value):
        return None
    return value.strip()
