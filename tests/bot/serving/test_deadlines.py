"""Connection deadlines: half-sent heads and stalled bodies are closed in bounded time, while signed callbacks,
keep-alive connections and slow-but-honest clients are served as before. The app runs behind the same runner
as ``leadrelay serve`` (bot/serving/deadlines.py), with its handler settings."""

from __future__ import annotations

import asyncio
import logging
import resource
import time

import pytest
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.ingress.simulate import oa_text
from bot.serving.deadlines import DeadlineAppRunner
from tests.support.helpers import make_config, oa_sim

HEAD_S, BODY_S = 2.0, 2.0
SLACK_S = 1.5  # the event loop is busy with 200 sockets and the callbacks: closing may take a little longer
HALF_OPEN = 200


class ServeRunnerTestServer(TestServer):
    """pytest-aiohttp's server, with `leadrelay serve`'s runner and handler settings."""

    def __init__(self, app, server_config, **kwargs):
        super().__init__(app, **kwargs)
        self._server_config = server_config

    async def _make_runner(self, **kwargs):
        kwargs["handler_cancellation"] = False  # aiohttp's default, as in production; tests default to True
        return DeadlineAppRunner(self.app, self._server_config, **kwargs)


@pytest.fixture
async def served(aiohttp_client, backend, jieba_base):
    config = make_config(backend, server={"header_timeout_s": HEAD_S, "body_timeout_s": BODY_S,
                                          "keepalive_timeout_s": 30.0})
    app = create_app(config, jieba_base=jieba_base)
    return await aiohttp_client(ServeRunnerTestServer(app, config.server))


@pytest.fixture
def enough_file_descriptors():
    """Both ends of every socket live in this process: 400 descriptors plus the app's own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * HALF_OPEN + 300
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"ulimit -n is {hard}, the test needs {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _open(client, first_bytes: bytes):
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(first_bytes)
    await writer.drain()
    return reader, writer


async def _seconds_until_closed(reader, limit: float, since: float | None = None) -> float:
    """Read whatever the server sends until it closes the connection; the time since ``since`` (or now)."""
    started = time.monotonic() if since is None else since
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def _partial_head(i: int) -> bytes:
    return f"POST /wechat/callback?n={i} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Pad".encode()


def _stalled_body(i: int) -> bytes:
    # A signed callback's handler waits reading the body; a form that does not exist is answered unread.
    target = f"/wechat/callback?{oa_sim().post(oa_text('o_stall', 'x', i)).query}" if i % 4 else "/f/no-such-form"
    return f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n<xml><ToUser".encode()


async def test_half_open_sockets_are_closed_while_callbacks_are_answered(served, enough_file_descriptors, caplog):
    caplog.set_level(logging.INFO)
    sockets = []
    for i in range(HALF_OPEN):  # one by one: each socket's deadline counts from its own start
        reader, writer = await _open(served, _partial_head(i) if i % 2 else _stalled_body(i))
        sockets.append((reader, writer, time.monotonic()))
    closing = [asyncio.create_task(_seconds_until_closed(r, HEAD_S + BODY_S + 10, since=t)) for r, _, t in sockets]

    # Meanwhile WeChat's signed callbacks are answered, promptly.
    latencies = []
    for i in range(20):
        req = oa_sim().post(oa_text(f"o_half_open_{i}", "你好", 7_000 + i))
        started = time.monotonic()
        resp = await served.post(f"/wechat/callback?{req.query}", data=req.body)
        latencies.append(time.monotonic() - started)
        assert resp.status == 200, await resp.text()
    assert time.monotonic() - sockets[0][2] < HEAD_S  # all 200 were held while every callback was answered

    lived = await asyncio.gather(*closing)  # each socket's life, from its connect to the server's close
    assert max(HEAD_S, BODY_S) * 0.9 <= min(lived), sorted(lived)[:5]  # not before its deadline either
    assert max(lived) <= max(HEAD_S, BODY_S) + SLACK_S, sorted(lived)[-5:]
    for _, writer, _ in sockets:
        writer.close()
    # A deadline is no error: nothing at ERROR level, no traceback from the handlers whose read was cut.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records
                                                                          if r.levelno >= logging.ERROR][:3]
    assert any("no complete request head" in r.getMessage() for r in caplog.records)
    assert any("request body not received" in r.getMessage() for r in caplog.records)


async def test_a_trickled_head_does_not_extend_its_deadline(served):
    reader, writer = await _open(served, b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    closed = asyncio.create_task(_seconds_until_closed(reader, 10))
    while not closed.done() and time.monotonic() - started < 5:
        writer.write(b"X-Slow: 1\r\n")  # a header line every 0.2 s, never the blank line
        await asyncio.sleep(0.2)
    assert closed.done() and await closed <= HEAD_S + SLACK_S
    writer.close()


async def test_a_trickled_body_does_not_extend_its_deadline(served):
    reader, writer = await _open(served, b"POST /wechat/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    started = time.monotonic()
    closed = asyncio.create_task(_seconds_until_closed(reader, 10))
    while not closed.done() and time.monotonic() - started < 5:
        writer.write(b"x")
        await asyncio.sleep(0.1)
    assert closed.done() and await closed <= BODY_S + SLACK_S
    writer.close()


async def _answer(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


async def test_keep_alive_outlives_the_head_deadline_and_slow_honest_clients_are_served(served):
    reader, writer = await _open(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
    await asyncio.sleep(HEAD_S * 2)  # idle between requests: keep-alive's business, not the head deadline's
    for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):  # a slow head within its deadline
        writer.write(part)
        await asyncio.sleep(HEAD_S / 4)
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
    req = oa_sim().post(oa_text("o_keepalive", "你好", 7_100))  # a body in pieces, within its deadline
    body = req.body.encode() if isinstance(req.body, str) else req.body
    writer.write(f"POST /wechat/callback?{req.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body[:10])
    await asyncio.sleep(BODY_S / 2)
    writer.write(body[10:])
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
    writer.close()
