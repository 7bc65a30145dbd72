"""Events whose handler needs WeChat lookups first (a UnionID from ``user/info``, a WeCom contact): the lookups
run after the ack, outside any transaction, then the event is handled in a transaction of its own.

A batch (bot/inbox/tx.py) that meets such an event leaves its row pending and unlocked and hands it here, so
neither the batch's row locks nor the events behind it wait for WeChat (up to its 10 s time-out). The same
sender's later events of the batch come along and are handled right after it, in order (a worker waiting
for them would hold up everyone behind it). Each event's lookups and handling are one tracked task: bounded
in number, awaited (then cancelled) on stop, and never the only copy of the work: the rows stay pending in
the database until their transactions mark them done, so a crash or a full house leaves them to the sweep,
which hands them here again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

MAX_RUNNING = 64  # events in their lookups at once; more wait in the database for the sweep
_SOON_RETRIES = 40  # as the processor's: a conflict or an earlier event of the sender resolves within moments
_RETRY_PAUSE_S = 0.05

Prepare = Callable[[int], Awaitable[Mapping[str, Any] | None]]  # None: the row is no longer pending
Handle = Callable[[int, Mapping[str, Any] | None], Awaitable[str]]  # None: not prepared (may defer in turn)
Fail = Callable[[int, BaseException], Awaitable[None]]


class Lookups:
    def __init__(self, prepare: Prepare, handle: Handle, fail: Fail, *, done: str, again: Collection[str],
                 max_running: int = MAX_RUNNING) -> None:
        """``done`` / ``again``: the statuses of ``handle`` that mean handled, and "try again soon" (a
        conflict, an earlier event of the sender)."""
        self._prepare = prepare
        self._handle = handle
        self._fail = fail
        self._done = done
        self._again = frozenset(again)
        self._max = max_running
        self._running: dict[int, asyncio.Task[None]] = {}
        self._then: dict[int, list[int]] = {}  # a row in its lookups -> its sender's next rows, to handle after it

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def holding(self) -> frozenset[int]:
        """The rows in their lookups now (pending, unlocked: a claim of the oldest rows leaves them be)."""
        return frozenset(self._running)

    def start(self, inbox_id: int, then: Sequence[int] = ()) -> None:
        """Look up and then handle this row, then the rows ``then`` (its sender's next ones), unless it is in
        hand already or too many are (then the rows wait in the database for the sweep)."""
        if inbox_id in self._running:
            for later in then:
                self.follow(inbox_id, later)
            return
        if len(self._running) >= self._max:
            log.info("inbox row %s waits for the sweep: %d events are in their WeChat lookups", inbox_id, self._max)
            return
        self._then[inbox_id] = list(then)
        task = asyncio.create_task(self._run(inbox_id), name=f"inbox-lookup-{inbox_id}")
        self._running[inbox_id] = task
        task.add_done_callback(lambda _: self._running.pop(inbox_id, None))

    def follow(self, first: int, inbox_id: int) -> bool:
        """Handle ``inbox_id`` (its sender's next event) right after ``first``, if ``first`` is in its lookups
        and the task will still come to it; False otherwise (the caller keeps the row)."""
        then = self._then.get(first)
        if then is None:
            return False
        if inbox_id not in then:
            then.append(inbox_id)
        return True

    async def stop(self, drain_s: float) -> None:
        """Let lookups in progress finish their events; past ``drain_s`` they are cancelled (rows stay pending)."""
        tasks = list(self._running.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=drain_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, inbox_id: int) -> None:
        try:
            await self._lookup_and_handle(inbox_id)
        finally:
            # No await since the last look at the list: a row ``follow`` added is handled, or refused here.
            self._then.pop(inbox_id, None)

    async def _lookup_and_handle(self, inbox_id: int) -> None:
        try:
            prepared = await self._prepare(inbox_id)
        except Exception as exc:  # noqa: BLE001 - a lookup's own errors are handled by it; this is a bug
            log.exception("inbox row %s: preparing it failed", inbox_id)
            await self._fail(inbox_id, exc)
            return
        if prepared is None:
            return  # handled meanwhile (another process)
        then = self._then[inbox_id]
        try:
            if await self._soon(inbox_id, prepared) != self._done:
                return  # the sender's next events still wait for this one: the sweep brings them all back
            while then:
                if await self._soon(then.pop(0), None) != self._done:
                    return  # it needs lookups of its own (handed on) or failed: the rest wait for it
        except Exception:  # noqa: BLE001 - the rows stay pending: the sweep retries them
            log.exception("inbox row %s: handling it after its lookups failed; the sweep will retry", inbox_id)

    async def _soon(self, inbox_id: int, prepared: Mapping[str, Any] | None) -> str:
        status = ""
        for _ in range(_SOON_RETRIES):
            status = await self._handle(inbox_id, prepared)
            if status not in self._again:
                break
            await asyncio.sleep(_RETRY_PAUSE_S)
        return status
