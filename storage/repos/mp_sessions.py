"""Mini-program logins: the opaque token's hash, the lead, and the OpenID and ``session_key`` WeChat gave."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MiniProgramSession


async def open_mp_session(session: AsyncSession, *, token_hash: str, lead_id: int, openid: str, session_key: str,
                          now: datetime, expires_at: datetime) -> None:
    """Add a login in the caller's transaction; the lead's expired logins go at the same time."""
    await session.execute(delete(MiniProgramSession).where(
        MiniProgramSession.lead_id == lead_id, MiniProgramSession.expires_at <= now))
    session.add(MiniProgramSession(token_hash=token_hash, lead_id=lead_id, openid=openid, session_key=session_key,
                                   created_at=now, expires_at=expires_at))


async def find_mp_session(session: AsyncSession, token_hash: str) -> MiniProgramSession | None:
    """The login with this token hash, expired or not (the caller tells the two apart)."""
    return await session.scalar(select(MiniProgramSession).where(MiniProgramSession.token_hash == token_hash))
