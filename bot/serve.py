"""Running the server process: the app behind a runner that keeps the connection deadlines of ``[server]``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal

from aiohttp import web

from bot.app import create_app
from bot.config.core import Config
from bot.serving.deadlines import DeadlineAppRunner

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 15.0


async def _run(app: web.Application, config: Config) -> None:
    runner = DeadlineAppRunner(app, config.server, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()  # the app's start-up: a failure ends the process before it listens
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        log.info("serving on http://%s:%s", config.server.host, config.server.port)
        await stop.wait()
        log.info("stopping: finishing the requests in flight (at most %ss)", SHUTDOWN_TIMEOUT_S)
    finally:
        await runner.cleanup()


def serve(config: Config, *, demo: bool = False, port: int | None = None) -> int:
    if port is not None:
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=port))
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(config)
    if demo:
        from bot.demo import load_demo_on_startup

        app.on_startup.append(load_demo_on_startup)
    asyncio.run(_run(app, config))
    return 0
