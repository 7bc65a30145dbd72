"""A fake of the WeChat Official Account and WeCom HTTP APIs, for tests, manual runs and benchmarks.

In tests::

    state = FakeWeChatState()
    async with FakeWeChatServer(state) as server:
        cfg = WeChatConfig(app_id="wx-test-app", token="t", app_secret="oa-secret",
                           api_base_url=server.base_url, mode="live")

Standalone: ``python -m tests.support.fakes.wechat_server --port 9999`` (lenient: unknown users are invented).

Endpoints live in wechat_endpoints.py; the dispatcher here records each request and applies delays,
forced failures, rate limits and token checks before the endpoint's handler runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

import tests.support.fakes.wechat_cards  # noqa: F401 (registers template cards, per-member limits)
import tests.support.fakes.wechat_groupmsg  # noqa: F401 (mass messages: results, reminders)
import tests.support.fakes.wechat_transfer  # noqa: F401 (registers transfer_customer / transfer_result)
from tests.support.fakes import wechat_mobile  # noqa: F401 (registers WeCom web OAuth and the JS-SDK ticket)
from tests.support.fakes.wechat_endpoints import ENDPOINTS, Call
from tests.support.fakes.wechat_state import ApiError, FakeWeChatState, RecordedRequest

STATE_KEY = web.AppKey("wechat_state", FakeWeChatState)


# ---- dispatch ---------------------------------------------------------------------------------------------

async def _dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    query = dict(request.query)
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    state.requests.append(RecordedRequest(request.method, request.path, query, body, state.clock()))
    ep = ENDPOINTS.get((request.method, request.path))
    if ep is None:
        return web.json_response({"errcode": 404, "errmsg": "no such endpoint in the fake"}, status=404)
    if delay := state.delays.get(request.path):
        await asyncio.sleep(delay)
    try:
        if isinstance(body, str):
            raise ApiError(47001, "data format error")
        if forced := state.take_forced_failure(request.path):
            raise forced
        state.check_rate_limit(request.path)
        token = None
        if ep.auth is not None:
            token = state.check_token(query.get("access_token"), ep.auth, ep.scope)
        result = ep.handler(Call(state, query, body, token))
    except ApiError as exc:
        return web.json_response({"errcode": exc.errcode, "errmsg": exc.errmsg})
    # Token endpoints of the OA answer without errcode; everything else says "ok".
    if request.path != "/cgi-bin/token":
        result = {"errcode": 0, "errmsg": "ok", **result}
    return web.json_response(result, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def create_app(state: FakeWeChatState | None = None) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state or FakeWeChatState()
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


class FakeWeChatServer:
    """Runs the fake on 127.0.0.1 (a free port unless given) inside the current event loop."""

    def __init__(self, state: FakeWeChatState | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or FakeWeChatState()
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        self._runner = web.AppRunner(create_app(self.state), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake WeChat / WeCom API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--appid", default="wx-test-app")
    parser.add_argument("--secret", default="oa-secret")
    parser.add_argument("--corp-id", default="ww-test-corp")
    parser.add_argument("--agent-id", type=int, default=1000002)
    parser.add_argument("--corp-secret", default="app-secret")
    parser.add_argument("--contact-secret", default="contact-secret")
    parser.add_argument("--token-grace", type=float, default=0.0, help="seconds a replaced token still works")
    parser.add_argument("--strict", action="store_true", help="unknown users / contacts are errors")
    args = parser.parse_args(argv)
    state = FakeWeChatState(
        oa_apps={args.appid: args.secret}, corp_id=args.corp_id, agent_id=args.agent_id,
        wecom_secrets={args.corp_secret: frozenset({"app"}), args.contact_secret: frozenset({"contact"})},
        token_grace_s=args.token_grace, lenient=not args.strict,
    )
    # Requests are recorded in memory; a long benchmark run should not keep every one of them.
    state.requests = _BoundedList(10_000)
    web.run_app(create_app(state), host=args.host, port=args.port, access_log=None)


class _BoundedList(list[RecordedRequest]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def append(self, item: RecordedRequest) -> None:
        super().append(item)
        if len(self) > 2 * self._size:  # trim in chunks: deleting from the front is O(n)
            del self[: len(self) - self._size]


if __name__ == "__main__":
    main()
