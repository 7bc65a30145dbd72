"""Running the server process."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from bot.app import create_app
from bot.config.core import Config


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
    web.run_app(app, host=config.server.host, port=config.server.port, access_log=None,
                shutdown_timeout=15, handle_signals=True)
    return 0
