"""Identity tombstones: an erased identity is kept only as a keyed hash and the time of its erasure.

Enough to recognise a credential issued to that identity before the erasure (a tracked link, a form cookie)
and refuse it, never enough to read the identity back. The hashing is the caller's (the server's key ring):
``Hasher`` gives a message's digests under every key, the current key's first; the first is stored, all are
looked up, so a rotation keeps earlier tombstones effective.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import IdentityKey
from storage.models import IdentityTombstone

Hasher = Callable[[str], Sequence[str]]


def tombstone_message(identity: IdentityKey) -> str:
    """What is hashed: kind, app and value, separated by a byte none of them can hold."""
    return "\x1f".join(identity.ref)


async def bury(session: AsyncSession, identities: Iterable[IdentityKey], hasher: Hasher, now: datetime) -> None:
    """Record the erasure of ``identities`` at ``now`` (a second erasure moves the time forward)."""
    rows = [{"digest": hasher(tombstone_message(i))[0], "erased_at": now} for i in identities]
    if not rows:
        return
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(IdentityTombstone).values(rows)
    await session.execute(stmt.on_conflict_do_update(index_elements=["digest"],
                                                     set_={"erased_at": stmt.excluded.erased_at}))


async def last_erased(session: AsyncSession, identities: Iterable[IdentityKey], hasher: Hasher) -> datetime | None:
    """When any of ``identities`` was last erased, or None when none ever was."""
    digests = [d for i in identities for d in hasher(tombstone_message(i))]
    if not digests:
        return None
    return await session.scalar(select(func.max(IdentityTombstone.erased_at))
                                .where(IdentityTombstone.digest.in_(digests)))
