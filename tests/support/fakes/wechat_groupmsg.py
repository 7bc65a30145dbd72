"""WeCom mass messages to customers in the fake: ``add_msg_template`` with many customers, ``get_groupmsg_task``,
``get_groupmsg_send_result`` (cursor pages of 1,000) and ``remind_groupmsg_send`` (3 per message per 24 h).

Knobs: ``groupmsgs_of(state)`` (a ``FakeGroupMsgs`` on the fake's state) — ``confirm(state, member)`` is the
member pressing "send" in their client (each customer then gets 1 sent, 2 not a friend or 3 over their receive
limit), ``fail_member(state, member, errcode)`` makes that member's add_msg_template calls fail, and
``receive_limit`` / ``limit_window_s`` set the customers' receive limit (default: 1 a day).

The single-customer hand-off reply (wechat_endpoints.wecom_msg_task) keeps its behaviour: this handler wraps it
and adds the ``fail_list`` (customers who are not the sender's external contacts) and the task book. Codes not
documented by WeCom, chosen here: more than 10,000 customers 40058, a fourth reminder in 24 hours 45009, an
unknown msgid 41062.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.fakes.wechat_endpoints import ENDPOINTS, Call, _require, endpoint
from tests.support.fakes.wechat_state import ApiError, FakeWeChatState

PATH = "/cgi-bin/externalcontact/add_msg_template"
MAX_CUSTOMERS = 10_000
PAGE_SIZE = 1000
DAY_S = 86400.0
MAX_REMINDERS = 3
NOT_SENT, SENT, NOT_FRIEND, OVER_LIMIT = 0, 1, 2, 3
MEMBER_SENT = 2

_single = ENDPOINTS[("POST", PATH)].handler  # registered by wechat_endpoints, imported above


@dataclass
class FakeGroupTask:
    msgid: str
    sender: str
    customers: list[str]
    fail_list: list[str]
    created_at: float
    sent_at: float | None = None
    results: dict[str, int] = field(default_factory=dict)


@dataclass
class FakeGroupMsgs:
    tasks: dict[str, FakeGroupTask] = field(default_factory=dict)
    received: dict[str, list[float]] = field(default_factory=dict)  # external_userid -> receive times
    reminders: dict[str, list[float]] = field(default_factory=dict)  # msgid -> remind times
    failing: dict[str, int] = field(default_factory=dict)  # member -> errcode of their add_msg_template
    receive_limit: int = 1
    limit_window_s: float = DAY_S
    page_size: int = PAGE_SIZE

    def of_member(self, member: str) -> list[FakeGroupTask]:
        return [t for t in self.tasks.values() if t.sender == member]


def groupmsgs_of(state: FakeWeChatState) -> FakeGroupMsgs:
    return state.__dict__.setdefault("_group_msgs", FakeGroupMsgs())


def fail_member(state: FakeWeChatState, member: str, errcode: int = 81013) -> None:
    groupmsgs_of(state).failing[member] = errcode


def confirm(state: FakeWeChatState, member: str, *, skip: tuple[str, ...] = ()) -> int:
    """The member sends their waiting tasks (leaving out ``skip``); how many tasks."""
    book, now = groupmsgs_of(state), state.clock()
    done = 0
    for task in book.of_member(member):
        if task.sent_at is not None:
            continue
        task.sent_at, done = now, done + 1
        for euid in task.customers:
            if euid in task.fail_list or euid in skip:
                task.results[euid] = NOT_FRIEND if euid in task.fail_list else NOT_SENT
                continue
            contact = state.external_contacts.get(euid)
            if contact is None or member not in contact["follow_user"]:
                task.results[euid] = NOT_FRIEND
                continue
            recent = [t for t in book.received.get(euid, []) if now - t < book.limit_window_s]
            if len(recent) >= book.receive_limit:
                task.results[euid] = OVER_LIMIT
                continue
            book.received.setdefault(euid, []).append(now)
            task.results[euid] = SENT
    return done


def _follows(state: FakeWeChatState, euid: Any, sender: str) -> bool:
    if not isinstance(euid, str):
        return False
    if euid not in state.external_contacts and state.lenient:
        state.register_external_contact(euid, f"Customer {euid}", follow_user=[sender])
    contact = state.external_contacts.get(euid)
    return contact is not None and sender in contact["follow_user"]


@endpoint("POST", PATH, auth="wecom", scope="contact")
def add_msg_template(call: Call) -> dict[str, Any]:
    _require(call.body, "sender", "external_userid", "text")
    book, sender = groupmsgs_of(call.state), str(call.body["sender"])
    euids = call.body["external_userid"]
    if not isinstance(euids, list) or not 1 <= len(euids) <= MAX_CUSTOMERS:
        raise ApiError(40058, f"external_userid: 1 to {MAX_CUSTOMERS} customers per call")
    if sender in book.failing:
        raise ApiError(book.failing[sender], "forced failure for this member")
    answer = _single(call)
    fail_list = [e for e in euids if not _follows(call.state, e, sender)]
    book.tasks[answer["msgid"]] = FakeGroupTask(answer["msgid"], sender, [str(e) for e in euids], fail_list,
                                                call.state.clock())
    return {**answer, "fail_list": fail_list}


def _task(call: Call) -> FakeGroupTask:
    _require(call.body, "msgid")
    task = groupmsgs_of(call.state).tasks.get(str(call.body["msgid"]))
    if task is None:
        raise ApiError(41062, "invalid msgid")
    return task


def _page(call: Call, rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    size = min(int(call.body.get("limit") or PAGE_SIZE), groupmsgs_of(call.state).page_size)
    cursor = str(call.body.get("cursor") or "")
    start = int(cursor) if cursor.isdigit() else 0
    more = start + size < len(rows)
    return {key: rows[start:start + size], "next_cursor": str(start + size) if more else ""}


@endpoint("POST", "/cgi-bin/externalcontact/get_groupmsg_task", auth="wecom", scope="contact")
def get_groupmsg_task(call: Call) -> dict[str, Any]:
    task = _task(call)
    row = {"userid": task.sender, "status": MEMBER_SENT if task.sent_at is not None else 0}
    if task.sent_at is not None:
        row["send_time"] = int(task.sent_at)
    return _page(call, [row], "task_list")


@endpoint("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result", auth="wecom", scope="contact")
def get_groupmsg_send_result(call: Call) -> dict[str, Any]:
    _require(call.body, "userid")
    task = _task(call)
    if call.body["userid"] != task.sender:
        return _page(call, [], "send_list")
    rows = [{"external_userid": e, "userid": task.sender, "status": task.results.get(e, NOT_SENT)}
            for e in task.customers]
    return _page(call, rows, "send_list")


@endpoint("POST", "/cgi-bin/externalcontact/remind_groupmsg_send", auth="wecom", scope="contact")
def remind_groupmsg_send(call: Call) -> dict[str, Any]:
    task, now = _task(call), call.state.clock()
    times = groupmsgs_of(call.state).reminders.setdefault(task.msgid, [])
    if len([t for t in times if now - t < DAY_S]) >= MAX_REMINDERS:
        raise ApiError(45009, "remind_groupmsg_send: at most 3 times per message per 24 hours")
    times.append(now)
    return {}
