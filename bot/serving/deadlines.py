"""Connection deadlines aiohttp lacks: a request's head and then its body must arrive in bounded time.

aiohttp closes a connection idle between requests after ``keepalive_timeout``; that timer also starts at
``connection_made`` and trickled bytes do not restart it, so a client that never finishes its head is closed
too, but only after the long keep-alive wait (which must outlast nginx's upstream keep-alive). A request whose
body stalls is never closed: its handler waits on ``request.post()`` forever, holding a socket and a file
descriptor. A few hundred such clients exhaust a process.

So each connection has at most one deadline at a time, nginx's rules:
- head: ``header_timeout_s`` from the connection's start, or from the first byte of a later request, to
  send the complete request line and headers (nginx's client_header_timeout);
- body: ``body_timeout_s`` from the end of the head for the whole body (a total, not per read, so a client
  trickling a byte at a time cannot hold the socket either).
A connection that misses its deadline is closed. Idle keep-alive connections stay aiohttp's. The fast path
(head and body in one packet, as WeChat and nginx send them) arms no timer after the connection's first.

The seam: a RequestHandler subclass, made by a Server subclass, made by an AppRunner subclass (serve.py and
the tests use the same runner). It reads three RequestHandler internals aiohttp's own keep-alive logic uses
(``_request_count``, ``_messages``, ``_waiter``); tests/bot/serving fail if an aiohttp upgrade changes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.config.core import ServerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deadlines:
    header_s: float
    body_s: float


class DeadlineProtocol(RequestHandler):
    """One connection: aiohttp's request handler plus the head and body deadlines."""

    def __init__(self, manager: web.Server, *, deadlines: Deadlines, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._deadlines = deadlines
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""  # "head" or "body": what the armed deadline waits for

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm("head", self._deadlines.header_s, self._head_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:  # a request's head is complete (or was refused as malformed)
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof():
                self._arm("body", self._deadlines.body_s, lambda: self._body_late(payload))
            else:
                self._disarm()
        elif data and self._phase != "head" and self._waiting_for_head():
            self._arm("head", self._deadlines.header_s, self._head_late)  # a new request has begun

    def _waiting_for_head(self) -> bool:
        """start() waits for the next request (none is being handled): aiohttp's own idle test."""
        return self._waiter is not None and not self._waiter.done()

    def _arm(self, phase: str, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self._loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _head_late(self) -> None:
        self._deadline, self._phase = None, ""
        if self._waiting_for_head() and self.transport is not None:
            log.info("closed a connection: no complete request head within %ss", self._deadlines.header_s)
            self.force_close()

    def _body_late(self, payload: Any) -> None:
        self._deadline, self._phase = None, ""
        if not payload.is_eof() and self.transport is not None:
            log.info("closed a connection: request body not received within %ss", self._deadlines.body_s)
            self.force_close()  # the handler's read raises ConnectionResetError; quiet_disconnects ends it


class DeadlineServer(web.Server):
    def __init__(self, *args: Any, deadlines: Deadlines, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines

    def __call__(self) -> RequestHandler:
        return DeadlineProtocol(self, loop=self._loop, deadlines=self.deadlines, **self._kwargs)


class DeadlineAppRunner(web.AppRunner):
    """An AppRunner whose connections keep the deadlines of ``[server]`` (and its keep-alive time-out)."""

    def __init__(self, app: web.Application, server: ServerConfig, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=server.keepalive_timeout_s, **kwargs)
        self._deadlines = Deadlines(header_s=server.header_timeout_s, body_s=server.body_timeout_s)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's start-up; its request handler and settings
        return DeadlineServer(plain.request_handler, request_factory=plain.request_factory,
                              handler_cancellation=plain.handler_cancellation, deadlines=self._deadlines,
                              **plain._kwargs)


@web.middleware
async def quiet_disconnects(request: web.Request, handler: Any) -> web.StreamResponse:
    """A request whose client is gone (it hung up, or a deadline closed it) ends here: there is no one to
    answer, and nothing to log at ERROR."""
    try:
        return await handler(request)
    except ConnectionResetError:
        if request.transport is not None and not request.transport.is_closing():
            raise  # a reset from elsewhere (a database or Redis connection): a real error
        log.debug("%s %s: the client is gone", request.method, request.path)
        return web.Response(status=408)  # never sent: aiohttp drops writes to a closed connection
