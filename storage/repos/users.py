"""Users: the people who sign in to the console and call the API."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User, utcnow


async def user_by_name(session: AsyncSession, username: str) -> User | None:
    return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def add_user(session: AsyncSession, *, username: str, role: str, password_hash: str,
                   display_name: str = "", wecom_userid: str | None = None) -> User:
    """Raises IntegrityError (at flush) when the username is taken."""
    user = User(username=username, role=role, password_hash=password_hash, display_name=display_name or username,
                wecom_userid=wecom_userid, created_at=utcnow())
    session.add(user)
    await session.flush()
    return user


async def list_users(session: AsyncSession, *, include_disabled: bool = True, limit: int = 500,
                     offset: int = 0) -> list[User]:
    stmt = select(User)
    if not include_disabled:
        stmt = stmt.where(User.disabled_at.is_(None))
    return list((await session.execute(stmt.order_by(User.id).limit(limit).offset(offset))).scalars())


async def disable_user(session: AsyncSession, user: User) -> bool:
    """False when the user was disabled already. Their API tokens stop working with them (see api_tokens)."""
    if user.disabled_at is not None:
        return False
    user.disabled_at = utcnow()
    await session.flush()
    return True


async def set_password(session: AsyncSession, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    await session.flush()
