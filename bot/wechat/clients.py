"""wechatpy plumbing shared by the Official Account and WeCom APIs.

wechatpy is synchronous and manages tokens on its own (fetch on demand, refresh-and-retry on 40001).
Both behaviours would bypass the shared Redis token, so the clients here:
- never fetch by themselves: the token of a call is injected through a context variable;
- never retry by themselves: auto_retry is off, and ``TokenedAPI.call`` does the one retry;
- talk to the configured base URL (tests point it at the fake server), token endpoint included;
- run in a thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient as _OAClient
from wechatpy.enterprise import WeChatClient as _WeComClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.errors import LeadRelayError, WeChatAPIError
from bot.wechat.tokens import AccessTokenCache

log = logging.getLogger(__name__)

# 40001 invalid credential, 40014 invalid access_token, 42001 access_token expired.
BAD_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
QUOTA_ERRCODE = 45009

T = TypeVar("T")

_call_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("wechat_access_token", default=None)


class WeChatTransportError(LeadRelayError, OSError):
    """The HTTP exchange itself failed (network, timeout, non-2xx): WeChat may or may not have acted.

    An OSError, like the requests exceptions it wraps, so generic network-error handling catches it.
    """


class _NoStorage(SessionStorage):
    """wechatpy insists on a session store; tokens live in Redis, so this one keeps nothing."""

    def get(self, key: Any, default: Any = None) -> Any:
        return default

    def set(self, key: Any, value: Any, ttl: Any = None) -> None:
        return None

    def delete(self, key: Any) -> None:
        return None


class _InjectedTokenMixin:
    """Overrides wechatpy's token handling; must come first in the bases."""

    token_url: str
    timeout: float | None
    _http: requests.Session

    @property
    def access_token(self) -> str:
        if not self.__dict__.get("token_url"):
            # wechatpy's __new__ inspects every attribute before __init__ runs; it only tolerates this.
            raise AttributeError("access_token")
        token = _call_token.get()
        if token is None:
            # Reaching wechatpy's own fetch would bypass the single-refresher lock: refuse loudly.
            raise RuntimeError("wechatpy call made without an injected access token")
        return token

    def _token_params(self) -> dict[str, str]:
        raise NotImplementedError

    def fetch_access_token(self) -> dict[str, Any]:
        # wechatpy's own version ignores the timeout and hard-codes the production host.
        res = self._http.get(self.token_url, params=self._token_params(), timeout=self.timeout)
        res.raise_for_status()
        return self._handle_result(res)  # type: ignore[attr-defined]


class OAClient(_InjectedTokenMixin, _OAClient):
    def __init__(self, appid: str, secret: str, base_url: str, timeout: float) -> None:
        super().__init__(appid, secret, session=_NoStorage(), timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url.rstrip("/") + "/cgi-bin/"
        self.token_url = base_url.rstrip("/") + "/cgi-bin/token"

    def _token_params(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class WeComClient(_InjectedTokenMixin, _WeComClient):
    def __init__(self, corp_id: str, secret: str, base_url: str, timeout: float) -> None:
        super().__init__(corp_id, secret, session=_NoStorage(), timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url.rstrip("/") + "/cgi-bin/"
        self.token_url = base_url.rstrip("/") + "/cgi-bin/gettoken"

    def _token_params(self) -> dict[str, str]:
        return {"corpid": self.corp_id, "corpsecret": self.secret}


def _mount_pool(client: Any, size: int) -> None:
    # requests keeps 10 connections per host by default; more threads would churn connections.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    client._http.mount("http://", adapter)
    client._http.mount("https://", adapter)


def _translate(fn: Callable[[], T]) -> T:
    """Run a wechatpy call, turning its exceptions into ours."""
    try:
        result = fn()
    except WeChatClientException as exc:
        if exc.errcode is None:  # wechatpy's wrapper around a non-2xx HTTP status
            status = getattr(exc.response, "status_code", None)
            raise WeChatTransportError(f"HTTP status {status}") from exc
        raise WeChatAPIError(int(exc.errcode), str(exc.errmsg)) from exc
    except requests.RequestException as exc:
        raise WeChatTransportError(f"{type(exc).__name__}: {exc}") from exc
    if isinstance(result, requests.Response):
        # wechatpy hands back the raw response when the body is not JSON (a proxy's error page, say).
        raise WeChatTransportError(f"answer is not JSON (HTTP {result.status_code})")
    return result


class TokenedAPI:
    """Base of the API facades: thread pool, token injection, and the one retry on a bad token."""

    def __init__(self, *, executor: Executor | None, max_workers: int, name: str) -> None:
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._pool_size = max_workers
        self._clients: list[Any] = []

    def _register(self, client: Any) -> Any:
        _mount_pool(client, self._pool_size)
        self._clients.append(client)
        return client

    def _token_cache(self, redis: Any, key: str, client: Any) -> AccessTokenCache:
        async def fetch() -> tuple[str, int]:
            result = await self._in_thread(client.fetch_access_token)
            return str(result["access_token"]), int(result.get("expires_in", 7200))

        return AccessTokenCache(redis, key, fetch)

    async def _in_thread(self, fn: Callable[[], T], token: str | None = None) -> T:
        def job() -> T:
            _call_token.set(token)
            return _translate(fn)

        loop = asyncio.get_running_loop()
        # A fresh context per call: the token set in the worker thread never leaks into the next job.
        return await loop.run_in_executor(self._executor, contextvars.copy_context().run, job)

    async def call(self, tokens: AccessTokenCache, fn: Callable[[], T]) -> T:
        token = await tokens.get()
        try:
            return await self._in_thread(fn, token)
        except WeChatAPIError as exc:
            if exc.errcode not in BAD_TOKEN_ERRCODES:
                raise
            log.info("access token %s rejected with %d; refreshing once", tokens.key, exc.errcode)
        # WeChat refused the call before acting on it, so repeating it (sends included) is safe.
        await tokens.invalidate(token)
        fresh = await tokens.refresh(stale=token)
        return await self._in_thread(fn, fresh)

    async def aclose(self) -> None:
        for client in self._clients:
            client._http.close()
        if self._own_executor:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
