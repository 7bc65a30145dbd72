"""Routers: filters decide which handler an event goes to; handlers only handle.

Three phases, as in bolt's ack-then-work: a *reply* handler may answer inline (it must be quick and free of
side effects, since a retried callback runs it again); after the answer, a *prepare* handler makes the slow
network lookups the event needs (a UnionID from WeChat) outside any transaction, so no row lock waits on the
network; then the *process* handler does the real work inside the event's database transaction, with what
the prepare handler returned as ``ctx.prepared`` (bot/inbox/lookups.py runs the two in turn).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.ingress.events import InboundEvent
from leads.activity import Activity

if TYPE_CHECKING:
    from bot.dispatch.context import HandlerContext, PrepareContext, ReplyContext, Services

Filter = Callable[[InboundEvent], bool]
ProcessHandler = Callable[["HandlerContext"], Awaitable[None]]
ReplyHandler = Callable[["ReplyContext"], Awaitable[str | None]]
PrepareHandler = Callable[["PrepareContext"], Awaitable[dict[str, Any]]]
# An event's activity (leads/activity.py), or None when it does more than leave touches; with its occurred_at.
Describe = Callable[[InboundEvent, "Services", datetime], Activity | None]


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self._process: list[tuple[tuple[Filter, ...], ProcessHandler]] = []
        self._describe: dict[ProcessHandler, Describe] = {}
        self._reply: list[tuple[tuple[Filter, ...], ReplyHandler]] = []
        self._prepare: list[tuple[tuple[Filter, ...], PrepareHandler]] = []
        self._children: list[Router] = []

    def on(self, *filters: Filter, describe: Describe | None = None) -> Callable[[ProcessHandler], ProcessHandler]:
        """``describe``: what the handler does, as an Activity, for events that only leave touches (the handler
        records that same description); a batch records such events together (bot/inbox/tx.py)."""
        def register(handler: ProcessHandler) -> ProcessHandler:
            self._process.append((filters, handler))
            if describe is not None:
                self._describe[handler] = describe
            return handler

        return register

    def reply(self, *filters: Filter) -> Callable[[ReplyHandler], ReplyHandler]:
        def register(handler: ReplyHandler) -> ReplyHandler:
            self._reply.append((filters, handler))
            return handler

        return register

    def prepare(self, *filters: Filter) -> Callable[[PrepareHandler], PrepareHandler]:
        def register(handler: PrepareHandler) -> PrepareHandler:
            self._prepare.append((filters, handler))
            return handler

        return register

    def include(self, *children: Router) -> None:
        self._children.extend(children)

    def match(self, event: InboundEvent) -> ProcessHandler | None:
        """The first process handler whose filters all pass; own handlers before included routers."""
        return _first(event, self._process, lambda r: r.match(event), self._children)

    def match_describe(self, event: InboundEvent) -> Describe | None:
        """The description of the process handler ``match`` picks, if it has one."""
        handler = self.match(event)
        return None if handler is None else self._described(handler)

    def _described(self, handler: ProcessHandler) -> Describe | None:
        found = self._describe.get(handler)
        for child in self._children:
            if found is not None:
                break
            found = child._described(handler)
        return found

    def match_reply(self, event: InboundEvent) -> ReplyHandler | None:
        return _first(event, self._reply, lambda r: r.match_reply(event), self._children)

    def match_prepare(self, event: InboundEvent) -> PrepareHandler | None:
        return _first(event, self._prepare, lambda r: r.match_prepare(event), self._children)


def _first(event: InboundEvent, entries: list[tuple[tuple[Filter, ...], Any]],
           descend: Callable[[Router], Any], children: list[Router]) -> Any:
    for filters, handler in entries:
        if all(f(event) for f in filters):
            return handler
    for child in children:
        found = descend(child)
        if found is not None:
            return found
    return None
