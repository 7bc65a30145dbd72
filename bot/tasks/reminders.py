"""The job ``task_reminders``: due tasks become one WeCom app message per member and run.

Every ``REMIND_EVERY_S`` one process of the cluster claims the open tasks whose due time has come and that
were not reminded yet (storage/repos/task_reminders.py), groups them by member (the assignee, else the
creator) and enqueues one ``wecom.app_text`` per member listing them (bot/tasks/message.py). The outbox row
and ``reminded_at`` commit together; the row's idempotency key names the member and the exact task set, so a
retried transaction cannot send the same reminder twice. The outbox sender paces each member within WeCom's
limits (30 a minute, 1,000 an hour); one message per member per run stays far below them, however many
tasks fall due together. In sandbox mode the row is kept as "sandboxed", like every other send.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.outbox.enqueue import enqueue
from bot.tasks.message import Line, lead_label, reminder_text
from leads import access
from storage.models import utcnow
from storage.repos.task_reminders import DueTask, Recipient, claim_due_tasks, mark_reminded, recipients

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from bot.config.core import Config

log = logging.getLogger(__name__)

REMIND_EVERY_S = 30.0  # the job's interval: a reminder arrives within half a minute of its due time
CLAIM_LIMIT = 500  # tasks per run; more wait for the next run (30 s later), each member still gets one message
METHOD = "wecom.app_text"


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    base_url: str  # server.public_url: the links to the console
    sandbox: bool  # wechat.mode == "sandbox": rows are kept, not sent
    wecom: bool  # WeCom configured: live sends need it

    @classmethod
    def of(cls, config: Config) -> ReminderSettings:
        return cls(config.server.public_url, config.wechat.mode == "sandbox", config.wecom.enabled)

    @property
    def active(self) -> bool:
        # Live without WeCom, a row would wait forever for a sender that has no client for it.
        return self.sandbox or self.wecom


def reminder_key(user_id: int, task_ids: Sequence[int]) -> str:
    """One key per (member, set of tasks): the same reminder enqueued twice is stored once."""
    digest = hashlib.sha256(",".join(str(i) for i in sorted(task_ids)).encode()).hexdigest()[:32]
    return f"task_reminder:{user_id}:{digest}"


def may_see(person: Recipient, task: DueTask) -> bool:
    """May the member read the task's lead (then the message names it)? The console's rule table."""
    owner = task.lead_owner_id
    return access.allowed(person.role, access.LEAD_READ, owns=owner is not None and owner == person.user_id,
                          same_team=owner is not None and owner in person.teammates)


def _line(person: Recipient, task: DueTask) -> Line:
    label = lead_label(task.lead_name, task.company) if may_see(person, task) else ""
    return Line(task.id, task.lead_id, task.title, label, task.due_at)


async def remind_due_tasks(sessions: async_sessionmaker, settings: ReminderSettings, *, now: datetime | None = None,
                           limit: int = CLAIM_LIMIT) -> int:
    """One run; how many reminder messages it enqueued."""
    if not settings.active:
        return 0
    now = now or utcnow()
    async with sessions() as session, session.begin():
        due = await claim_due_tasks(session, now, limit)
        if not due:
            return 0
        people = await recipients(session, {t.person_id for t in due})
        groups: dict[int, list[DueTask]] = {}
        for task in due:
            groups.setdefault(task.person_id, []).append(task)
        sent = 0
        for person_id, tasks in groups.items():
            person = people.get(person_id)
            # An erased lead's task has no title or name left: it is marked, not listed.
            lines = [_line(person, t) for t in tasks if not t.erased] if person else []
            if person is None or not lines:
                continue
            content = reminder_text(lines, settings.base_url)
            row = await enqueue(session, target="wecom", method=METHOD,
                                payload={"userid": person.wecom_userid, "content": content},
                                idempotency_key=reminder_key(person_id, [t.id for t in tasks]),
                                sandbox=settings.sandbox)
            sent += row is not None
        await mark_reminded(session, [t.id for t in due], now)
    if sent:
        log.info("task reminders: %d messages for %d due tasks", sent, len(due))
    return sent
