"""Per-user API tokens. Only the SHA-256 of a token is stored: a database leak gives no working token."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ApiToken, User, utcnow

LAST_USED_EVERY = timedelta(minutes=1)
TOKEN_PREFIX = "lr_"  # tells a user token from a service token at a glance (and to secret scanners)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue_token(session: AsyncSession, user_id: int, label: str = "") -> tuple[str, ApiToken]:
    """A new token (returned once, never stored) and its row."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, token_hash=token_hash(token), label=label, created_at=utcnow())
    session.add(row)
    await session.flush()
    return token, row


async def user_for_token(session: AsyncSession, hashed: str) -> User | None:
    """The enabled user holding this unrevoked token (by its hash), noting when it was last used; else None."""
    stmt = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hashed, ApiToken.revoked_at.is_(None), User.disabled_at.is_(None)))
    found = (await session.execute(stmt)).first()
    if found is None:
        return None
    token, user = found
    now = utcnow()
    # Once a minute at most: a busy client does not turn every read into a write.
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        token.last_used_at = now
        await session.flush()
    return user


async def tokens_of(session: AsyncSession, user_id: int) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return list((await session.execute(stmt)).scalars())


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    result = await session.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                                   .values(revoked_at=utcnow()))
    return bool(result.rowcount)


async def revoke_all(session: AsyncSession, user_id: int) -> int:
    result = await session.execute(update(ApiToken).where(ApiToken.user_id == user_id,
                                                          ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return int(result.rowcount or 0)
