"""Who may call the JSON API: holders of a configured bearer token (``api.tokens``, admin service tokens)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.keys import CONFIG
from bot.web.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_token(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token.encode("utf-8", "surrogateescape")
        tokens = request.app[CONFIG].api.tokens
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(presented, t.encode()) for t in tokens):
            raise ApiError(401, "unauthorized", "需要有效的访问令牌（Authorization: Bearer <token>）")
        return await handler(request)

    return guarded
