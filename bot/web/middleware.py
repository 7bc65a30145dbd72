"""Central error handling: typed errors become clear HTTP answers, in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.errors import CallbackRejected, PayloadTooLarge
from bot.keys import CONFIG

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        limit = request.app[CONFIG].server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
        return await handler(request)
    except CallbackRejected as exc:
        log.info("refused %s %s: %s", request.method, request.path, exc.reason)
        return web.json_response({"error": type(exc).__name__, "message": exc.reason}, status=exc.status)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": "PayloadTooLarge", "message": "body too large"}, status=413)
