"""WeCom customer transfers in the fake: ``externalcontact/transfer_customer`` and ``transfer_result``, on the
job (在职继承) and for members who left (``resigned/...``, 离职继承), with WeCom's limits.

Knobs: ``transfers_of(state)`` (a ``FakeTransfers`` kept on the fake's state) — ``complete()`` / ``refuse()``
settle waiting transfers (WeCom does it after 24 hours, or when the customer refuses; ``auto_after_s`` does it
by the state's clock), ``transferred_before()`` preloads a customer's past transfers for the 90-day limit,
``resign()`` marks a member as having left.

Codes from WeCom's global error-code table: 40096 invalid external_userid, 40128 transferred too often (2 per
customer per 90 days, on-the-job only), 40129 already being transferred, 40130 handover = takeover, 40131 not
the handover member's customer, 40097 member has not left (resigned API). Not documented by WeCom, chosen
here: more than 100 customers answers 40058 (invalid parameter) for the whole call, an unknown takeover 40003.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.fakes.wechat_endpoints import Call, _require, endpoint
from tests.support.fakes.wechat_state import ApiError, FakeWeChatState

MAX_PER_CALL = 100
NINETY_DAYS_S = 90 * 86400
TAKEOVER_AFTER_S = 24 * 3600
PAGE_SIZE = 1000
TAKEN_OVER, WAITING, REFUSED = 1, 2, 3


@dataclass
class FakeTransfer:
    external_userid: str
    handover: str
    takeover: str
    resigned: bool
    started_at: float
    status: int = WAITING
    takeover_time: int = 0


@dataclass
class FakeTransfers:
    records: list[FakeTransfer] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)  # external_userid -> on-the-job starts
    resigned_members: set[str] = field(default_factory=set)
    auto_after_s: float | None = None  # None: only complete()/refuse() settle a transfer
    page_size: int = PAGE_SIZE

    def waiting(self, external_userid: str | None = None) -> list[FakeTransfer]:
        return [t for t in self.records if t.status == WAITING
                and (external_userid is None or t.external_userid == external_userid)]

    def transferred_before(self, external_userid: str, times: int, at: float) -> None:
        self.history.setdefault(external_userid, []).extend([at] * times)

    def resign(self, userid: str) -> None:
        self.resigned_members.add(userid)


def transfers_of(state: FakeWeChatState) -> FakeTransfers:
    # Kept on the state object, so each fake server (and test) has its own.
    return state.__dict__.setdefault("_customer_transfers", FakeTransfers())


def settle(state: FakeWeChatState, transfer: FakeTransfer, status: int) -> None:
    transfer.status, transfer.takeover_time = status, int(state.clock())
    contact = state.external_contacts.get(transfer.external_userid)
    if status == TAKEN_OVER and contact is not None:
        follow = [u for u in contact["follow_user"] if u != transfer.handover]
        contact["follow_user"] = [*follow, transfer.takeover]


def complete(state: FakeWeChatState, external_userid: str | None = None, status: int = TAKEN_OVER) -> int:
    """Settle the waiting transfers (of one customer, or all): 1 taken over, 3 refused, 4 takeover full."""
    waiting = transfers_of(state).waiting(external_userid)
    for t in waiting:
        settle(state, t, status)
    return len(waiting)


def refuse(state: FakeWeChatState, external_userid: str) -> int:
    return complete(state, external_userid, REFUSED)


def _one(state: FakeWeChatState, book: FakeTransfers, euid: Any, handover: str, takeover: str,
         resigned: bool) -> int:
    if not isinstance(euid, str) or not euid:
        return 40096
    if euid not in state.external_contacts:
        if not state.lenient:
            return 40096
        state.register_external_contact(euid, f"Customer {euid}", follow_user=[handover])
    if handover == takeover:
        return 40130
    if handover not in state.external_contacts[euid]["follow_user"]:
        return 40131
    if book.waiting(euid):
        return 40129
    now = state.clock()
    if not resigned:
        recent = [at for at in book.history.get(euid, []) if now - at < NINETY_DAYS_S]
        if len(recent) >= 2:
            return 40128
        book.history.setdefault(euid, []).append(now)
    book.records.append(FakeTransfer(euid, handover, takeover, resigned, now,
                                     takeover_time=int(now + TAKEOVER_AFTER_S)))
    return 0


def _transfer(call: Call, *, resigned: bool) -> dict[str, Any]:
    _require(call.body, "handover_userid", "takeover_userid", "external_userid")
    state, book = call.state, transfers_of(call.state)
    handover, takeover = str(call.body["handover_userid"]), str(call.body["takeover_userid"])
    euids = call.body["external_userid"]
    if not isinstance(euids, list) or not 1 <= len(euids) <= MAX_PER_CALL:
        raise ApiError(40058, f"external_userid: 1 to {MAX_PER_CALL} customers per call")
    if state.lenient:
        state.employees.update({handover, takeover})
    if takeover not in state.employees:
        raise ApiError(40003, "invalid takeover_userid")
    if resigned and handover not in book.resigned_members:
        raise ApiError(40097, "handover_userid has not resigned")
    customers = [{"external_userid": e, "errcode": _one(state, book, e, handover, takeover, resigned)}
                 for e in euids]
    return {"customer": customers}


def _result(call: Call, *, resigned: bool) -> dict[str, Any]:
    _require(call.body, "handover_userid", "takeover_userid")
    state, book = call.state, transfers_of(call.state)
    pair = (str(call.body["handover_userid"]), str(call.body["takeover_userid"]))
    if book.auto_after_s is not None:
        for t in book.waiting():
            if state.clock() - t.started_at >= book.auto_after_s:
                settle(state, t, TAKEN_OVER)
    mine = [t for t in book.records if (t.handover, t.takeover) == pair and t.resigned == resigned]
    cursor = str(call.body.get("cursor") or "")
    start = int(cursor) if cursor.isdigit() else 0
    page = mine[start:start + book.page_size]
    more = start + book.page_size < len(mine)
    return {"customer": [{"external_userid": t.external_userid, "status": t.status,
                          "takeover_time": t.takeover_time} for t in page],
            "next_cursor": str(start + book.page_size) if more else ""}


@endpoint("POST", "/cgi-bin/externalcontact/transfer_customer", auth="wecom", scope="contact")
def transfer_customer(call: Call) -> dict[str, Any]:
    return _transfer(call, resigned=False)


@endpoint("POST", "/cgi-bin/externalcontact/resigned/transfer_customer", auth="wecom", scope="contact")
def resigned_transfer_customer(call: Call) -> dict[str, Any]:
    return _transfer(call, resigned=True)


@endpoint("POST", "/cgi-bin/externalcontact/transfer_result", auth="wecom", scope="contact")
def transfer_result(call: Call) -> dict[str, Any]:
    return _result(call, resigned=False)


@endpoint("POST", "/cgi-bin/externalcontact/resigned/transfer_result", auth="wecom", scope="contact")
def resigned_transfer_result(call: Call) -> dict[str, Any]:
    return _result(call, resigned=True)
