"""The fast lane: events that may hand a lead to sales go before the backlog.

Under a flood of callbacks, after-ack processing gives way to the answers (bot/inbox/processor.py) and a backlog
builds up, handled once the flood ends. Most of that backlog cannot change anyone's stage. An event from a lead
that more intent would make an MQL must not wait behind it: sales should see that lead within a second of its
answer. So every ``inbox.fast_lane_ms`` the rows this process stored since the last look are triaged in one
query: the sender's identity, lead and stored scores tell whether more motivation would move its stage
(``leads.lifecycle.stages_intent_can_move``). All pending events of those senders are handled at once, in
order, in the same transactions as any batch (bot/inbox/tx.py). Everything else keeps its place in the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

# This module keeps its own SQL instead of calling storage/repos/: it is the callback hot path, and its
# statements are tuned for the callback benchmark (bench/README.md).
from sqlalchemy import Select, and_, bindparam, case, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.inbox.rows import due_for_handling
from bot.inbox.tx import DONE, InboxHandling
from bot.ingress.events import OA, WECOM
from leads.identity import OA_OPENID, WECOM_EXTERNAL
from leads.lifecycle import stages_intent_can_move
from leads.scoring_rules import ScoringRules
from storage.models import Identity, InboxEvent, Lead, LeadScore

log = logging.getLogger(__name__)
_inbox, _ident, _leads, _scores = InboxEvent.__table__, Identity.__table__, Lead.__table__, LeadScore.__table__
_IDENTITY_KIND = {OA: OA_OPENID, WECOM: WECOM_EXTERNAL}  # what the sender of an inbox row is, per source
_ROUNDS = 20  # a sender's events that wait for another worker: tried again this often, then left to the queue
_ROUND_PAUSE_S = 0.025
_MAX_PASSES = 3
Sender = tuple[str, str]  # (inbox source, from_user)


def urgent_senders_query(rules: ScoringRules, app_ids: dict[str, str]) -> Select | None:
    """Senders of the pending inbox rows with ids between :lo and :hi whose lead more intent would move.

    ``None`` when no quadrant's stage action can be reached by more intent: nothing is ever urgent."""
    moves = stages_intent_can_move(rules.actions)
    able = _scores.c.ability >= rules.ability_threshold
    sides = []
    if moves[True]:
        sides.append(and_(able, _leads.c.stage.in_(sorted(moves[True]))))
    if moves[False]:
        sides.append(and_(~able, _leads.c.stage.in_(sorted(moves[False]))))
    if not sides:
        return None
    kind = case(_IDENTITY_KIND, value=_inbox.c.source)
    app = case({source: app_ids.get(source, "") for source in _IDENTITY_KIND}, value=_inbox.c.source)
    return (select(_inbox.c.source, _inbox.c.from_user).distinct()
            .join_from(_inbox, _ident, and_(_ident.c.kind == kind, _ident.c.app == app,
                                            _ident.c.value == _inbox.c.from_user))
            .join(_leads, _leads.c.id == _ident.c.lead_id)
            .join(_scores, _scores.c.lead_id == _leads.c.id)
            .where(_inbox.c.id.between(bindparam("lo"), bindparam("hi")), _inbox.c.status == "pending",
                   or_(*sides)))


class FastLane:
    def __init__(self, engine: AsyncEngine, handling: InboxHandling, rules: ScoringRules, app_ids: dict[str, str],
                 *, interval_s: float, batch: int, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._handling = handling
        self._query = urgent_senders_query(rules, app_ids)
        self._interval_s = interval_s
        self._batch = batch
        self._clock = clock
        self._span: tuple[int, int] | None = None  # ids stored since the last triage, first and last
        self._due: set[Sender] = set()  # urgent senders not yet handled
        self._busy: set[Sender] = set()  # senders a pass is handling: one pass per sender keeps their order
        self._passes: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.handled = 0  # events this lane handled: they skipped the queue

    @property
    def enabled(self) -> bool:
        return self._query is not None

    def start(self) -> None:
        if self.enabled:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="inbox-fast-lane")

    async def stop(self, drain_s: float) -> None:
        """Finish the passes in progress; rows not yet handled stay pending for the queue or the sweep."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait([self._task], timeout=drain_s)
        if not done:
            for task in (self._task, *self._passes):
                task.cancel()
            await asyncio.gather(self._task, *self._passes, return_exceptions=True)
        self._task = None

    def notify(self, inbox_ids: Sequence[int]) -> None:
        if self._task is None or not inbox_ids:
            return
        lo, hi = min(inbox_ids), max(inbox_ids)
        if self._span is not None:
            lo, hi = min(lo, self._span[0]), max(hi, self._span[1])
        self._span = (lo, hi)
        self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                span, self._span = self._span, None
                if span is not None:
                    try:
                        self._due.update(await self.urgent_senders(*span))
                    except Exception:  # noqa: BLE001 - the queue and the sweep still handle these events
                        log.exception("fast lane triage of inbox rows %s-%s failed", *span)
                self._start_pass()
                await asyncio.sleep(self._interval_s)
        finally:
            await asyncio.gather(*self._passes, return_exceptions=True)

    def _start_pass(self) -> None:
        """Passes overlap, so that a new urgent event need not wait for the one before it to commit."""
        ready = self._due - self._busy
        if not ready or len(self._passes) >= _MAX_PASSES:
            return
        self._due -= ready
        self._busy |= ready
        task = asyncio.create_task(self._pass(ready), name="inbox-fast-lane-pass")
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)

    async def _pass(self, senders: set[Sender]) -> None:
        more: list[Sender] = []
        try:
            more = await self.handle(senders)
        except Exception:  # noqa: BLE001 - the queue and the sweep still handle these events
            log.exception("fast lane pass over %d senders failed", len(senders))
        finally:
            self._busy -= senders
            self._due.update(more)
            self._wake.set()  # start what waited for this pass or for a free slot

    async def urgent_senders(self, lo: int, hi: int) -> list[Sender]:
        if self._query is None:
            return []
        async with self._engine.connect() as conn:
            return [(r.source, r.from_user) for r in await conn.execute(self._query, {"lo": lo, "hi": hi})]

    async def handle(self, senders: Iterable[Sender]) -> list[Sender]:
        """The pending events of these senders, oldest first: a batch of them.

        Returns the senders to come back to (more than a batch of their events are pending), so that a pass
        costs at most a batch even if a flood were all urgent."""
        who = sorted(senders)
        for _ in range(_ROUNDS):
            ids = await self._pending_of(who)
            if not ids or self._stopping:
                return []
            outcome = await self._handling.many(ids)
            progress = outcome.handled
            # Alone, a failure is recorded on its row and backs off; a wait is tried again next round.
            for inbox_id in outcome.waiting:
                progress += int(await self._handling.one(inbox_id) == DONE)
            self.handled += progress
            # An event in its WeChat lookups is handled by them (bot/inbox/lookups.py): nothing to wait for.
            if progress or outcome.deferred:
                return who if len(ids) == self._batch else []
            await asyncio.sleep(_ROUND_PAUSE_S)
        return []

    async def _pending_of(self, senders: Sequence[Sender]) -> list[int]:
        stmt = (select(_inbox.c.id)
                .where(due_for_handling(self._clock()), tuple_(_inbox.c.source, _inbox.c.from_user).in_(list(senders)))
                .order_by(_inbox.c.id).limit(self._batch))
        async with self._engine.connect() as conn:
            return list((await conn.execute(stmt)).scalars())
