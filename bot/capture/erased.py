"""What an erasure voids: a credential (tracked link, form cookie) issued to a person before it.

Such a credential records nothing and creates no lead. What the person does afterwards on their own (writes to
the OA, opens a form in WeChat and is bound afresh, logs in to the mini-program) is new activity and may start
a new lead; links and cookies issued from then on carry a later time and work again.

The check belongs inside the transaction that records, twice: before resolving (a voided credential is not
used) and after (``still_valid``): an erasure may commit between the first check and resolution, or while
resolution waits for the lead's lock (storage.tx.Retry). The transaction then runs again, and its first check
sees the tombstone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config.core import Config
from bot.crypto.keyring import Purpose
from leads.identity import IdentityKey
from storage.repos.tombstones import last_erased
from storage.tx import Retry

if TYPE_CHECKING:  # passed through to the repository
    from sqlalchemy.ext.asyncio import AsyncSession


async def voided_by_erasure(session: AsyncSession, config: Config, identities: list[IdentityKey],
                            issued_ms: int) -> bool:
    """Any of ``identities`` was erased at or after ``issued_ms`` (ms since the epoch)."""
    erased = await last_erased(session, identities, config.keyring.hasher(Purpose.TOMBSTONE))
    return erased is not None and issued_ms <= erased.timestamp() * 1000


async def still_valid(session: AsyncSession, config: Config, identities: list[IdentityKey], issued_ms: int) -> None:
    """After resolving: raise storage.tx.Retry when an erasure committed since the check before it."""
    if await voided_by_erasure(session, config, identities, issued_ms):
        raise Retry("an erasure committed while the credential was being used")
