"""Which leads a list shows its caller: the rule table's scope as the owners to filter on, in SQL (storage)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from leads import access
from sdr_console.api.auth import Refused, actor_of
from storage.repos.teams import teammate_ids


async def owner_ids(session: AsyncSession, user_id: int, role: str, action: str) -> list[int] | None:
    """The one translation of a scope into owners, for the API and the console's pages: None for every lead;
    else the users whose leads may be shown (their own, or their teams' members'); [] when the role has no
    scope (callers refuse before asking)."""
    granted = access.scope(role, action)
    if granted is access.ALL:
        return None
    if granted is access.OWN:
        return [user_id]
    if granted is access.TEAM:
        return await teammate_ids(session, user_id)
    return []


async def owner_filter(request: web.Request, session: AsyncSession, action: str) -> list[int] | None:
    """None: every lead (scope ALL); else the user ids whose leads the caller may see — their own (OWN), or
    those of every member of their teams (TEAM). A role without the action gets a 403 (audited)."""
    actor = actor_of(request)
    granted = access.scope(actor.role, action)
    if granted is None:
        raise Refused(action)
    if granted is access.ALL:
        return None
    if actor.user_id is None:  # a service token acts as an admin: scope ALL above; never here, but never widen
        return []
    return await owner_ids(session, actor.user_id, actor.role, action)
