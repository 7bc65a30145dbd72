"""``GET /healthz``: can this process reach its database and Redis? (No token: load balancers call it.)"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.keys import ENGINE, REDIS
from storage.db import ping


async def healthz(request: web.Request) -> web.Response:
    probes = {"database": lambda: ping(request.app[ENGINE]), "redis": lambda: request.app[REDIS].ping()}
    report: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(), timeout=2)
            report[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, reported by name
            report[name] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in report.values())
    return web.json_response({"status": "ok" if healthy else "degraded", **report}, status=200 if healthy else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
