"""Request parameters parsed in one place: ASCII digits only, bounded, with a Chinese 4xx that names them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiohttp import web

from bot.web.errors import ApiError

MAX_ID_DIGITS = 18  # fits a PostgreSQL bigint


def _ascii_digits(raw: str) -> bool:
    # str.isdigit() accepts "²" and other Unicode digits that int() then rejects or misreads.
    return raw.isascii() and raw.isdigit()


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """Query parameter ``name``: absent or empty gives ``default``; else an integer in ``[lo, hi]`` or a 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _ascii_digits(raw) or len(raw) > len(str(hi)) or not lo <= int(raw) <= hi:
        raise ApiError(400, "bad_parameter", f"参数 {name} 须为 {lo} 到 {hi} 之间的整数")
    return int(raw)


def choice_param(request: web.Request, name: str, choices: Collection[str], default: str = "") -> str:
    """Query parameter ``name``: absent or empty gives ``default``; else one of ``choices`` or a 400."""
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if raw not in choices:
        raise ApiError(400, "bad_parameter", f"参数 {name} 须为以下之一：{'、'.join(sorted(choices))}")
    return raw


def path_id(request: web.Request, name: str = "lead_id", *, what: str = "潜客") -> int:
    """A numeric id from the URL path; anything else is a 404, as an unknown id is."""
    raw = request.match_info[name]
    if not _ascii_digits(raw) or len(raw) > MAX_ID_DIGITS or int(raw) == 0:
        raise not_found(what, raw)
    return int(raw)


def not_found(what: str, raw: Any) -> ApiError:
    return ApiError(404, "not_found", f"{what} {str(raw)[:40]!r} 不存在")


async def json_object(request: web.Request, *, code: str = "bad_json",
                      message: str = "请求体须为 JSON 对象") -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says so (``code``: what the endpoint has always answered)."""
    try:
        body = await request.json()
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, code, message)
    return body
