"""The one JSON error shape of every endpoint: ``{"error": code, "code": code, "message": 中文}``.

``error`` is what the console API has always answered, ``code`` what the mini-program's clients read; both
carry the same machine code, so every existing client keeps working. Handlers raise ``ApiError``; the
central middleware (bot/web/middleware.py) turns it, and anything unexpected on a JSON path, into this body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """Raised by a handler: becomes the JSON error answer (``extra`` adds keys, e.g. per-field errors)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "code": code, "message": message, **extra}


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(error_body(code, message, **extra), status=status, headers=headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Chinese as UTF-8, not \u escapes: readable in a browser's or the mini-program's network panel.
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))
