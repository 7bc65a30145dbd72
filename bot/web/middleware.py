"""Central error handling: typed errors become clear HTTP answers, in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from aiohttp import web

from bot.errors import CallbackRejected
from bot.web.errors import ApiError, error_response
from bot.web.params import bad_text, max_body_bytes

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Paths whose every answer is JSON, failures included (the H5 pages and /c/ links answer HTML or redirects).
JSON_PREFIXES = ("/api/", "/wechat/", "/wecom/", "/healthz")
# aiohttp's own refusals (no such route, wrong method) in the same shape as ours.
HTTP_ERRORS = {404: ("not_found", "接口不存在"), 405: ("method_not_allowed", "不支持该请求方法")}
BAD_URL = "链接含有无效字符或编码（须为 UTF-8，不能含 NUL）"


def _url_ok(request: web.Request) -> bool:
    """The path and query, percent-decoded, are UTF-8 without NUL (yarl would have turned invalid bytes
    into U+FFFD silently, and let NUL through to the database)."""
    try:
        decoded = unquote_to_bytes(request.raw_path).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return False
    return not bad_text(decoded)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        limit = max_body_bytes(request)
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, "PayloadTooLarge", f"请求体不能超过 {limit} 字节")
        if not _url_ok(request):
            if not request.path.startswith(JSON_PREFIXES):
                raise web.HTTPBadRequest(text=BAD_URL)
            raise ApiError(400, "bad_url", BAD_URL)
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except CallbackRejected as exc:
        # The machine code of a refused callback is its exception's name, as it always was.
        log.info("refused %s %s: %s", request.method, request.path, exc.reason)
        return error_response(exc.status, type(exc).__name__, exc.reason)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "PayloadTooLarge", "请求体过大")
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(JSON_PREFIXES):
            raise  # redirects, and the HTML pages' own errors
        code, message = HTTP_ERRORS.get(exc.status, ("http_error", exc.reason))
        return error_response(exc.status, code, message)
    except Exception:
        if not request.path.startswith(JSON_PREFIXES):
            raise
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal_error", "服务器繁忙，请稍后重试")
