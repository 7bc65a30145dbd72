"""State and test knobs of the fake WeChat / WeCom API server (see wechat_server.py for the endpoints)."""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float


@dataclass
class IssuedToken:
    value: str
    principal: str  # "oa:<appid>" or "wecom:<corpid>:<secret>": a new token replaces the principal's old one
    scopes: frozenset[str]
    expires_at: float
    invalid_after: float | None = None


@dataclass
class FakeUser:
    openid: str
    unionid: str | None
    subscribed: bool = True
    nickname: str = ""
    last_interaction: float | None = None


@dataclass
class WelcomeCode:
    issued_at: float
    used: bool = False


@dataclass
class OAuthCode:
    """A code the user's WeChat hands to the app: OA web OAuth, wx.login, or a getPhoneNumber button."""

    kind: str  # "oa_web", "mp_login" or "mp_phone"
    appid: str
    issued_at: float
    openid: str = ""
    unionid: str | None = None
    session_key: str = ""
    phone: str = ""
    country_code: str = "86"
    used: bool = False


class ApiError(Exception):
    """Raised by handlers and checks; becomes {"errcode", "errmsg"} in the response."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class FakeWeChatState:
    oa_apps: dict[str, str] = field(default_factory=lambda: {"wx-test-app": "oa-secret"})
    corp_id: str = "ww-test-corp"
    agent_id: int = 1000002
    # WeCom secret -> what its token may call: "app" (message/send), "contact" (externalcontact/*).
    wecom_secrets: dict[str, frozenset[str]] = field(default_factory=lambda: {
        "app-secret": frozenset({"app"}),
        "contact-secret": frozenset({"contact"}),
    })
    token_ttl_s: int = 7200
    # How long a replaced token keeps working. 0: at once, so any second refresh breaks the first token.
    token_grace_s: float = 0.0
    welcome_code_ttl_s: float = 20.0
    customer_service_window_s: float = 48 * 3600
    # Lenient: unknown openids / contacts / employees are made up on the fly (manual runs, benchmarks).
    lenient: bool = False
    clock: Callable[[], float] = time.time

    requests: list[RecordedRequest] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    external_contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    employees: set[str] = field(default_factory=set)
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    forced_failures: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _serial: itertools.count = field(default_factory=itertools.count)
    # OAuth / login / phone codes: single-use, and valid for oauth_code_ttl_s (5 minutes, like WeChat's).
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    oauth_code_ttl_s: float = 300.0
    oauth_openid: str = "o_web_visitor"  # whom /connect/oauth2/authorize says the visitor is

    # ---- knobs for tests ----------------------------------------------------------------------------

    def register_user(self, openid: str, unionid: str | None = None, *, subscribed: bool = True,
                      nickname: str = "", last_interaction: float | None = None) -> FakeUser:
        user = FakeUser(openid, unionid, subscribed, nickname, last_interaction)
        self.users[openid] = user
        return user

    def register_external_contact(self, external_userid: str, name: str, unionid: str | None = None,
                                  follow_user: list[str] | None = None) -> None:
        self.external_contacts[external_userid] = {
            "external_userid": external_userid, "name": name, "unionid": unionid,
            "follow_user": follow_user or [],
        }

    def register_employee(self, userid: str) -> None:
        self.employees.add(userid)

    def issue_welcome_code(self, code: str | None = None) -> str:
        """What an add_external_contact event would carry; valid once, for welcome_code_ttl_s."""
        code = code or f"WELCOME-{secrets.token_hex(8)}"
        self.welcome_codes[code] = WelcomeCode(issued_at=self.clock())
        return code

    def expire_all_tokens(self) -> None:
        now = self.clock()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)

    def fail_next(self, path: str, errcode: int, times: int = 1, errmsg: str = "forced failure") -> None:
        queue = self.forced_failures.setdefault(path, deque())
        queue.extend([(errcode, errmsg)] * times)

    def set_rate_limit(self, path: str, limit: int, window_s: float = 60.0) -> None:
        self.rate_limits[path] = (limit, window_s)

    def set_delay(self, path: str, seconds: float) -> None:
        self.delays[path] = seconds

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        return len(self.requests_to(path))

    def issue_oauth_code(self, kind: str, appid: str, **values: Any) -> str:
        code = f"CODE-{kind}-{secrets.token_hex(8)}"
        self.oauth_codes[code] = OAuthCode(kind=kind, appid=appid, issued_at=self.clock(), **values)
        return code

    def issue_login_code(self, appid: str, openid: str, unionid: str | None = None) -> str:
        """What wx.login gives the mini-program for this user."""
        return self.issue_oauth_code("mp_login", appid, openid=openid, unionid=unionid,
                                     session_key=f"SESSIONKEY-{secrets.token_hex(8)}")

    def issue_phone_code(self, appid: str, phone: str, country_code: str = "86") -> str:
        """What a getPhoneNumber button gives the mini-program."""
        return self.issue_oauth_code("mp_phone", appid, phone=phone, country_code=country_code)

    def expire_oauth_codes(self) -> None:
        for code in self.oauth_codes.values():
            code.issued_at = min(code.issued_at, self.clock() - self.oauth_code_ttl_s - 1)

    # ---- used by the endpoints ------------------------------------------------------------------------

    def issue_token(self, principal: str, scopes: frozenset[str]) -> IssuedToken:
        now = self.clock()
        for old in self.tokens.values():
            if old.principal == principal and old.invalid_after is None:
                old.invalid_after = now + self.token_grace_s
        value = f"TOKEN-{next(self._serial)}-{secrets.token_hex(6)}"
        token = IssuedToken(value, principal, scopes, expires_at=now + self.token_ttl_s)
        self.tokens[value] = token
        return token

    def check_token(self, value: str | None, kind: str, scope: str | None) -> IssuedToken:
        if not value:
            raise ApiError(41001, "access_token missing")
        token = self.tokens.get(value)
        if token is None or not token.principal.startswith(kind + ":"):
            raise ApiError(40014, "invalid access_token")
        now = self.clock()
        if now >= token.expires_at:
            raise ApiError(42001, "access_token expired")
        if token.invalid_after is not None and now >= token.invalid_after:
            raise ApiError(40001, "invalid credential, access_token is invalid or not latest")
        if scope is not None and scope not in token.scopes:
            raise ApiError(48002, "api forbidden")
        return token

    def take_forced_failure(self, path: str) -> ApiError | None:
        queue = self.forced_failures.get(path)
        if not queue:
            return None
        return ApiError(*queue.popleft())

    def check_rate_limit(self, path: str) -> None:
        if path not in self.rate_limits:
            return
        limit, window = self.rate_limits[path]
        now = self.clock()
        hits = self._hits.setdefault(path, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            raise ApiError(45009, "reach max api daily quota limit")
        hits.append(now)

    def user(self, openid: str) -> FakeUser:
        if openid not in self.users:
            if not self.lenient:
                raise ApiError(40003, "invalid openid")
            self.register_user(openid, unionid=f"union-{openid}")
        return self.users[openid]

    def external_contact(self, external_userid: str) -> dict[str, Any]:
        if external_userid not in self.external_contacts:
            if not self.lenient:
                raise ApiError(84061, "not external contact")
            self.register_external_contact(external_userid, f"Customer {external_userid}",
                                           unionid=f"union-{external_userid}")
        return self.external_contacts[external_userid]

    def take_oauth_code(self, kind: str, appid: str, code: str, *, used_errcode: int = 40163) -> OAuthCode:
        """The code's grant, once: unknown, foreign or expired codes are 40029, used ones ``used_errcode``."""
        grant = self.oauth_codes.get(code)
        if grant is None or grant.kind != kind or grant.appid != appid:
            raise ApiError(40029, "invalid code")
        if grant.used:
            raise ApiError(used_errcode, "code been used" if used_errcode == 40163 else "invalid code")
        if self.clock() - grant.issued_at > self.oauth_code_ttl_s:
            raise ApiError(40029, "invalid code, code expired")
        grant.used = True
        return grant
