"""Request input parsed in one place: ASCII digits only, bounded JSON, text without NUL or lone surrogates,
bearer tokens; each refusal a Chinese 4xx that names what was wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from aiohttp import web

from bot.keys import CONFIG
from bot.web.errors import ApiError
from leads.content import bad_text

MAX_ID_DIGITS = 18  # fits a PostgreSQL bigint
MAX_JSON_DEPTH = 32  # our bodies nest 4 levels at most; 10,000 would exhaust the parser's recursion
MAX_JSON_INT = 2**63 - 1  # a bigint: nothing larger can be stored anywhere
MAX_TOKEN_LEN = 512
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: what a token can be
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


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


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None for anything else (absent, another scheme,
    non-ASCII or malformed): a caller answers 401, never fails on a header it cannot encode."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip(" ")
    if scheme.lower() != "bearer" or len(token) > MAX_TOKEN_LEN or not _TOKEN.fullmatch(token):
        return None
    return token


def body_limit(max_bytes: int) -> Callable[[H], H]:
    """Lets one endpoint take a larger body than ``server.max_body_bytes`` (the middleware reads it here)."""
    def mark(handler: H) -> H:
        handler.max_body_bytes = max_bytes  # type: ignore[attr-defined]
        return handler
    return mark


def max_body_bytes(request: web.Request) -> int:
    """This request's body bound: the endpoint's own (``body_limit``) or ``server.max_body_bytes``."""
    own = getattr(request.match_info.handler, "max_body_bytes", None)
    return own if isinstance(own, int) else request.app[CONFIG].server.max_body_bytes


async def read_body(request: web.Request) -> bytes:
    """The whole body, at most ``max_body_bytes(request)`` of it, else a 413 (chunked bodies included)."""
    limit = max_body_bytes(request)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PayloadTooLarge", f"请求体不能超过 {limit} 字节")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json accepts them, nothing else does


def _finite(raw: str) -> float:
    value = float(raw)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")  # which one counts would be the parser's guess
    return obj


def _check_values(body: Any) -> str | None:
    """What is wrong with a parsed body (depth, text, numbers), walked without recursion, or None."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"JSON 嵌套不能超过 {MAX_JSON_DEPTH} 层"
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, str) and bad_text(value):
            return "请求中含有不允许的字符（NUL 或无效的 Unicode 代理项）"
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_JSON_INT:
            return "请求中的数字超出范围"
    return None


def parse_json(raw: bytes, *, code: str = "bad_json", message: str = "请求体须为 JSON 对象") -> dict[str, Any]:
    """A JSON object from UTF-8 bytes, or an ApiError(400, code) that says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, code, "请求体须为 UTF-8 编码的 JSON 对象") from exc
    try:
        body = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                          object_pairs_hook=_no_duplicates)
    except RecursionError as exc:  # the C parser stops itself at the interpreter's recursion limit
        raise ApiError(400, code, f"JSON 嵌套不能超过 {MAX_JSON_DEPTH} 层") from exc
    except ValueError:  # not JSON (over-long integers included)
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, code, message)
    problem = _check_values(body)
    if problem:
        raise ApiError(400, code, problem)
    return body


async def json_object(request: web.Request, *, code: str = "bad_json",
                      message: str = "请求体须为 JSON 对象") -> dict[str, Any]:
    """The body as a JSON object, or a 4xx that says why not (``code``: what the endpoint has always answered).

    The one JSON body parser of the app: bounded size and depth, UTF-8 only, no NaN, duplicate keys, NUL
    bytes, lone surrogates or integers beyond 64 bits.
    """
    return parse_json(await read_body(request), code=code, message=message)
