"""Who may call the JSON API: holders of a configured bearer token (``api.tokens``, admin service tokens)."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.keys import CONFIG
from bot.web.errors import ApiError
from bot.web.params import bearer_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_token(handler: Handler) -> Handler:
    @functools.wraps(handler)  # keeps the handler's marks (bot.web.params.body_limit) visible to the middleware
    async def guarded(request: web.Request) -> web.StreamResponse:
        token = bearer_token(request)  # None for a missing, non-ASCII or malformed header
        tokens = request.app[CONFIG].api.tokens
        if token is None or not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
            raise ApiError(401, "unauthorized", "需要有效的访问令牌（Authorization: Bearer <token>）")
        return await handler(request)

    return guarded
