"""What the console's sign-in and refusals write to the audit log (storage/repos/audit.py), in a transaction of
their own: a refused request changes nothing else, but its refusal is recorded."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.limits.web import LIMITER
from storage.repos import audit as audit_repo
from storage.tx import in_transaction

OK, DENIED = audit_repo.OK, audit_repo.DENIED


async def audit(request: web.Request, action: str, *, user_id: int, username: str, outcome: str = OK,
                detail: dict[str, Any] | None = None) -> None:
    """One entry about the user ``user_id`` (the actor, and the target: sign-ins are about themselves)."""
    ip = request.app[LIMITER].clients.of(request)  # the client as the rate limits see it (trusted proxies)

    async def work(session: AsyncSession) -> None:
        await audit_repo.record(session, action=action, actor_user_id=user_id, actor_label=username,
                                target_kind="user", target_id=user_id, after=detail or None, ip=ip, outcome=outcome)

    await in_transaction(request.app[SESSIONS], work)
