"""`leadrelay serve` itself: its runner keeps the deadlines, answers callbacks meanwhile, and stops cleanly on
SIGTERM (bot/serve.py)."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.ingress.simulate import oa_text
from tests.support.helpers import free_port, oa_sim
from tests.support.processes import ServerProcess, write_config


async def test_serve_closes_half_open_sockets_and_stops_on_sigterm(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("LEADRELAY_SERVER__HEADER_TIMEOUT_S", "1")
    monkeypatch.setenv("LEADRELAY_SERVER__BODY_TIMEOUT_S", "1")
    port = free_port()
    server = ServerProcess(write_config(tmp_path / "c.toml", backend, port, workers=1), port, tmp_path / "s.log")
    try:
        sockets = []
        for i in range(50):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i % 2 else
                         b"POST /f/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            sockets.append((reader, writer))
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            for i in range(5):
                req = oa_sim().post(oa_text(f"o_serve_{i}", "你好", 8_000 + i))
                async with http.post(f"{server.base}/wechat/callback?{req.query}", data=req.body) as resp:
                    assert resp.status == 200
        for reader, _ in sockets:
            async with asyncio.timeout(5):
                while await reader.read(65536):
                    pass
        assert time.monotonic() - started < 1 + 2.5
        for _, writer in sockets:
            writer.close()
    finally:
        server.stop()
    assert server.proc.returncode == 0  # SIGTERM: a clean shutdown, not a kill
    log = (tmp_path / "s.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and "no complete request head" in log
