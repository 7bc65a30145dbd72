"""Who calls the JSON API, and whether they may: bearer tokens and the rule table of leads/access.py.

Two kinds of bearer token: the configured ``api.tokens`` (admin service tokens, for integrations) and per-user
tokens (``leadrelay user token NAME``; only their SHA-256 is stored). Without a bearer token, the console's
session cookie authenticates the signed-in user (the console's pages call this API from the browser); a
state-changing call so authenticated must carry the session's CSRF token in the ``X-CSRF-Token`` header.
``require_token`` authenticates and puts
the caller on the request (``request[ACTOR]``); ``authorize`` applies the rule table and answers a refusal
with a 403 (``Refused``) and an audit entry (outcome "denied"), written in its own transaction after the
handler's: the refusal is recorded while the request changes nothing.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.keys import CONFIG, SESSIONS
from bot.limits.client_ip import ClientAddress
from bot.web.errors import ApiError
from bot.web.params import bearer_token
from leads import access
from sdr_console.web.csrf import HEADER as CSRF_HEADER
from sdr_console.web.csrf import session_token_ok
from sdr_console.web.guard import load_signed_in
from storage.models import Lead
from storage.repos import audit as audit_repo
from storage.repos.api_tokens import token_hash, user_for_token
from storage.repos.teams import share_a_team
from storage.tx import in_transaction

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVICE_LABEL = "service-token"
UNAUTHORIZED = "需要有效的访问令牌（Authorization: Bearer <token>）或登录会话"
CSRF_REFUSED = "请求缺少有效的安全令牌（X-CSRF-Token），操作未执行。请刷新页面后重试。"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACTION_MARK = "__access_action__"
UNDECLARED = "api.admin_only"  # the audit action of a refused call to a handler that declares no action


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller. ``user_id`` is None for a service token (it acts as an admin)."""

    user_id: int | None
    username: str
    role: str

    @property
    def label(self) -> str:
        return self.username if self.user_id is not None else SERVICE_LABEL


ACTOR = web.RequestKey("api_actor", Actor)


async def _actor_for(request: web.Request, token: str) -> Actor | None:
    # Service tokens: compared in constant time, all of them, so timing does not tell which one nearly matched.
    if any([hmac.compare_digest(token.encode(), t.encode()) for t in request.app[CONFIG].api.tokens]):
        return Actor(None, SERVICE_LABEL, access.ADMIN)

    async def lookup(session: Any) -> Actor | None:
        user = await user_for_token(session, token_hash(token))  # a hash lookup: no timing on the token itself
        return None if user is None else Actor(user.id, user.username, user.role)

    return await in_transaction(request.app[SESSIONS], lookup)


async def _session_actor(request: web.Request) -> Actor | None:
    """The console user of the session cookie; for a state-changing call only with the session's CSRF token
    in the header (a form post from another site carries the cookie but can set no header)."""
    current = await load_signed_in(request)
    if current is None:
        return None
    actor = Actor(current.user.id, current.user.username, current.user.role)
    if request.method not in SAFE_METHODS and not session_token_ok(current.session.csrf,
                                                                   request.headers.get(CSRF_HEADER)):
        request[ACTOR] = actor
        await audit(request, "console.csrf_refused", after={"method": request.method, "path": request.path[:200]},
                    outcome=audit_repo.DENIED)
        raise ApiError(403, "csrf_refused", CSRF_REFUSED)
    return actor


def declared_action(handler: Any) -> str | None:
    """The rule-table action a handler declared (``requires`` or ``lead_action``), or None."""
    return getattr(handler, ACTION_MARK, None)


def lead_action(action: str) -> Callable[[Handler], Handler]:
    """Declares that the handler checks ``action`` on its lead itself (``authorize_lead``): without a declared
    action, only admins (and service tokens) may call a handler."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, ACTION_MARK, action)
        return handler

    return mark


def require_token(handler: Handler) -> Handler:
    """Authenticates the caller. Deny by default: a handler that declares no action is for admins only, so a
    new endpoint cannot silently open to every user token."""
    declared = declared_action(handler)

    @functools.wraps(handler)  # keeps the handler's marks (bot.web.params.body_limit) visible to the middleware
    async def guarded(request: web.Request) -> web.StreamResponse:
        token = bearer_token(request)  # None for a missing, non-ASCII or malformed header
        if token is not None:
            actor = await _actor_for(request, token)
        elif "Authorization" in request.headers:  # a malformed token never falls back to the cookie
            actor = None
        else:
            actor = await _session_actor(request)
        if actor is None:  # unknown, revoked, or its user is disabled
            raise ApiError(401, "unauthorized", UNAUTHORIZED)
        request[ACTOR] = actor
        try:
            if declared is None and actor.role != access.ADMIN:
                route = request.match_info.route.resource
                raise Refused(UNDECLARED, "route", (route.canonical if route else request.path)[:64])
            return await handler(request)
        except Refused as refused:
            await audit(request, refused.action, target_kind=refused.target_kind, target_id=refused.target_id,
                        after=refused.detail, outcome=audit_repo.DENIED)
            raise

    return guarded


def client_ip(request: web.Request) -> str:
    """The caller's address for the audit log: the client a trusted proxy forwarded for, else the peer."""
    return ClientAddress(request.app[CONFIG].server.trusted_proxies).of(request)


def actor_of(request: web.Request) -> Actor:
    return request[ACTOR]


async def audit(request: web.Request, action: str, *, target_kind: str = "", target_id: str | int = "",
                before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                outcome: str = audit_repo.OK, session: Any = None) -> None:
    """One audit entry by the request's actor: in ``session`` (with the change), else in its own transaction
    (never while the handler holds a session of its own)."""
    actor = actor_of(request)

    async def work(db: Any) -> None:
        await audit_repo.record(db, action=action, actor_user_id=actor.user_id, actor_label=actor.label,
                                target_kind=target_kind, target_id=target_id, before=before, after=after,
                                ip=client_ip(request), outcome=outcome)

    if session is not None:
        await work(session)
    else:
        await in_transaction(request.app[SESSIONS], work)


class Refused(ApiError):
    """A 403 from the rule table. ``require_token`` records it in the audit log once the handler's database
    session is closed (SQLite has one connection: a second transaction inside the handler would wait for it)."""

    def __init__(self, action: str, target_kind: str = "", target_id: str | int = "",
                 detail: dict[str, Any] | None = None, message: str = "无权执行此操作") -> None:
        super().__init__(403, "forbidden", message, action=action)
        self.action, self.target_kind, self.target_id, self.detail = action, target_kind, target_id, detail


async def authorize(request: web.Request, action: str) -> Actor:
    """The actor, when the rule table lets them take this action outside any lead; else a 403 (audited)."""
    actor = actor_of(request)
    if not access.allowed(actor.role, action):
        raise Refused(action)
    return actor


async def authorize_lead(request: web.Request, session: Any, action: str, lead: Lead) -> Actor:
    """The actor, when they may take ``action`` on this lead (as its owner, or in its owner's team)."""
    actor = actor_of(request)
    owner = lead.owner_user_id
    owns = actor.user_id is not None and owner == actor.user_id
    scope = access.scope(actor.role, action)
    same_team = (scope is access.TEAM and not owns and owner is not None and actor.user_id is not None
                 and await share_a_team(session, actor.user_id, owner))
    if not access.allowed(actor.role, action, owns=owns, same_team=same_team):
        raise Refused(action, "lead", lead.id)
    return actor


def requires(action: str) -> Callable[[Handler], Handler]:
    """``require_token`` plus the rule table for an action that is not about one lead."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            await authorize(request, action)
            return await handler(request)

        setattr(checked, ACTION_MARK, action)
        return require_token(checked)

    return wrap
