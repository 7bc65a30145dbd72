"""Rate limits on the public endpoints: per client IP in a middleware, per WeChat user where handlers know it.

Which routes are limited per IP is the table below; everything else (WeChat's and WeCom's callbacks, the
console API, /healthz) is never counted. Handlers that know the visitor's OpenID (or a link's recipient) call
``limit_identity`` once they do. Over a limit the answer is 429 with Retry-After, in Chinese: the JSON error
shape under /api/, a small page for the H5 forms and /c/ links.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config.core import Config
from bot.config.limits import Rate
from bot.crypto.keyring import Purpose
from bot.keys import CONFIG, REDIS
from bot.limits.client_ip import ClientAddress
from bot.limits.counter import WindowCounter
from bot.web.errors import error_body, json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (method, route) -> the [rate_limits] key counting it per client IP. aiohttp answers HEAD with the GET route.
PER_IP = {
    ("GET", "/f/{form_id}"): "form_pages_per_ip",
    ("POST", "/f/{form_id}"): "form_posts_per_ip",
    ("POST", "/api/mp/login"): "mp_login_per_ip",
    ("GET", "/api/mp/forms/{form_id}"): "mp_forms_per_ip",
    ("POST", "/api/mp/forms/{form_id}"): "mp_forms_per_ip",
    ("GET", "/c/{token}"): "links_per_ip",
    ("POST", "/console/login"): "console_login_per_ip",
}
PER_IDENTITY = ("form_posts_per_openid", "mp_login_per_openid", "mp_forms_per_openid", "links_per_recipient",
                "console_login_per_user")
TITLE = "请求过于频繁"


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    def response(self, request: web.Request) -> web.Response:
        # Imported here: the capture pages bring wechatpy, and the console (which counts sign-ins) must not
        # (tests/test_layers.py).
        from bot.capture.common import message_page

        message = f"您的操作太频繁了，请 {self.retry_after} 秒后再试。"
        if request.path.startswith("/api/"):
            resp = json_response(error_body("rate_limited", message, retry_after=self.retry_after), status=429)
        else:
            resp = message_page(429, TITLE, message)
        resp.headers["Retry-After"] = str(self.retry_after)
        return resp


class RateLimiter:
    """The limits of one app: the rates of ``[rate_limits]``, parsed once, and the shared counters."""

    def __init__(self, config: Config) -> None:
        names = set(PER_IP.values()) | set(PER_IDENTITY)
        self.rates: dict[str, Rate | None] = {name: config.rate_limits.rate(name) for name in names}
        self.clients = ClientAddress(config.server.trusted_proxies)
        # The current key's subkey: hashes need not survive a key rotation, counts simply restart.
        self.counter = WindowCounter(config.redis.key_prefix, config.keyring.subkeys(Purpose.RATE_LIMIT)[0])

    async def check(self, request: web.Request, name: str, who: str) -> None:
        rate = self.rates[name]
        if rate is None:
            return
        retry_after = await self.counter.hit(request.app[REDIS], name, who, rate)
        if retry_after is not None:
            raise RateLimited(retry_after)


LIMITER = web.AppKey("rate_limiter", RateLimiter)


def _per_ip_name(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return PER_IP.get((method, resource.canonical))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        name = _per_ip_name(request)
        if name is not None:
            limiter = request.app[LIMITER]
            await limiter.check(request, name, limiter.clients.of(request))
        return await handler(request)
    except RateLimited as exc:
        return exc.response(request)


async def within_limit(request: web.Request, name: str, identity: str) -> bool:
    """Count like ``limit_identity`` but answer instead of raising: for requests that must go on over the
    limit, only without their side effect (a tracked link still redirects, unrecorded)."""
    try:
        await limit_identity(request, name, identity)
    except RateLimited:
        return False
    return True


async def limit_identity(request: web.Request, name: str, identity: str | None) -> None:
    """Count this request against ``name`` (a per-user key of [rate_limits]) for ``identity`` (an OpenID, or
    a link's recipient); raises RateLimited (answered as 429) over the limit. No identity: nothing to count."""
    if name not in PER_IDENTITY:
        raise ValueError(f"{name!r} is not a per-user rate limit")
    if identity:
        await request.app[LIMITER].check(request, name, identity)


def add_rate_limits(app: web.Application) -> None:
    """Inside the central error middleware, so a 429 keeps its Retry-After header."""
    app[LIMITER] = RateLimiter(app[CONFIG])
    app.middlewares.append(rate_limit_middleware)
