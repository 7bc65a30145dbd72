"""JSON errors of the mini-program API: ``{"code": "<machine code>", "message": "<Chinese>"}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by a handler: becomes the JSON error answer (``extra`` adds keys, e.g. per-field errors)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def json_errors(handler: Handler) -> Handler:
    """Every answer of the wrapped handler is JSON, unexpected failures included (never an HTML 500)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return json_response({"code": exc.code, "message": exc.message, **exc.extra}, status=exc.status,
                                 headers=headers)
        except Exception:
            log.exception("mini-program API %s failed", request.path)
            return json_response({"code": "internal_error", "message": "服务器繁忙，请稍后重试"}, status=500)
    return wrapped


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Chinese as UTF-8, not \u escapes: readable in the mini-program's network panel.
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))
