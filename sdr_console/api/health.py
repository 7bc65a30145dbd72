"""``GET /healthz``: can this process reach its database and Redis? (No token: load balancers call it.)"""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import Field

from bot.keys import ENGINE, REDIS
from sdr_console.api.spec import PUBLIC, ResponseModel, api_spec, respond
from storage.db import ping


class Health(ResponseModel):
    status: str = Field(description="ok，或 degraded（此时状态码为 503，正文格式相同）")
    database: str = Field(description="ok 或 error: <异常类型>")
    redis: str = Field(description="ok 或 error: <异常类型>")


@api_spec("健康检查（数据库与 Redis）", response=Health, auth=PUBLIC, also=(503,), tags=("health",))
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
    return respond(Health(status="ok" if healthy else "degraded", **report), status=200 if healthy else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
