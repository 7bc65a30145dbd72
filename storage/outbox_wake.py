"""Wake the outbox sender the moment a transaction that enqueued a send has committed.

A handler enqueues inside its event's transaction, which the inbox processor commits after the handler
returns: the handler cannot wake the sender (before the commit the sender would not see the row) and the
processor has no after-commit hook. So ``enqueue`` marks the session, and a SQLAlchemy ``after_commit``
listener on it wakes every sender running on that engine in this process. A rolled-back transaction wakes
nobody (the mark is only read on commit; a stale mark costs one harmless extra pass later).

This matters for WeCom welcome messages, whose code dies 20 s after the add event: the send starts within
milliseconds of the commit instead of waiting for the next poll. Other processes still find the row on
their next poll (``poll_interval_s``), which stays the safety net for everything.

It lives in storage because it is session plumbing (SQLAlchemy session events), not outbox policy: which
rows wake a sender is decided by ``enqueue`` (bot/outbox/enqueue.py).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

WakeFn = Callable[[], None]

_ENGINE_KEY = "outbox_wake_engine"
_LISTENING_KEY = "outbox_wake_listening"
_senders: weakref.WeakKeyDictionary[Engine, set[WakeFn]] = weakref.WeakKeyDictionary()


def register_sender(engine: AsyncEngine, wake: WakeFn) -> Callable[[], None]:
    """Call ``wake`` after every commit that enqueued a pending row on ``engine``; returns the unregister."""
    callbacks = _senders.setdefault(engine.sync_engine, set())
    callbacks.add(wake)
    return lambda: callbacks.discard(wake)


def wake_after_commit(session: AsyncSession) -> None:
    """Mark the session's current transaction: its commit wakes this process's senders."""
    bind = session.get_bind()
    session.info[_ENGINE_KEY] = getattr(bind, "engine", bind)
    if not session.info.get(_LISTENING_KEY):
        session.info[_LISTENING_KEY] = True
        event.listen(session.sync_session, "after_commit", _after_commit)


def _after_commit(sync_session: Session) -> None:
    engine = sync_session.info.pop(_ENGINE_KEY, None)
    if engine is None:
        return
    for wake in list(_senders.get(engine, ())):
        try:
            wake()
        except Exception:  # noqa: BLE001 - a wake-up is an optimisation; the poll still finds the row
            log.exception("waking an outbox sender failed")
