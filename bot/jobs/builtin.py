"""The jobs LeadRelay registers. Each reads what it needs from the app when it runs: the engine, the inbox
processor and the content library exist only once the app's contexts have started."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.batches.job import EVERY_S as BATCH_EVERY_S
from bot.batches.job import JOB_NAME as BATCH_JOB
from bot.batches.job import run_batches
from bot.handoff.sla_scheduler import SLA_JOB, SLA_TICK_S
from bot.handoff.transfer_poll import POLL_EVERY_S, poll_transfers
from bot.jobs.registry import CLUSTER, Job
from bot.journeys.wiring import journey_jobs
from bot.keys import CONFIG, CONVERSATION, ENGINE, ENQUEUE, EVENTS, PROCESSOR, SCORING, SERVICES, SESSIONS, SLA_RUNNER
from bot.tasks.reminders import REMIND_EVERY_S, ReminderSettings, remind_due_tasks
from storage.models import utcnow
from storage.repos.score_refresh import refresh_scores
from storage.repos.submission_keys import prune_submission_keys

CONTENT_REFRESH_S = 30.0
KEYS_PRUNE_S = 3600.0
# A mini-program retries within seconds; a day later the same idempotency key is a client bug, not a retry.
SUBMISSION_KEY_TTL = timedelta(days=1)


def builtin_jobs(app: web.Application) -> tuple[Job, ...]:
    cfg = app[CONFIG]
    refresh_s = cfg.scoring.refresh_interval_s

    async def inbox_sweep() -> None:
        await app[PROCESSOR].sweep()

    async def score_refresh() -> None:
        await refresh_scores(app[SESSIONS], app[SCORING], older_than_s=refresh_s, events=app[EVENTS])

    async def content_refresh() -> None:
        await app[CONVERSATION].content.refresh(app[ENGINE])

    async def submission_keys_prune() -> None:
        async with app[SESSIONS]() as session, session.begin():
            await prune_submission_keys(session, utcnow() - SUBMISSION_KEY_TTL)

    async def handoff_sla() -> None:
        app[SLA_RUNNER].tick()

    async def customer_transfer_poll() -> None:
        await poll_transfers(app[SESSIONS], app[SERVICES].wecom_api)

    async def batch_messages() -> None:
        await run_batches(app[SESSIONS], app[SERVICES].wecom_api, cfg, app[CONVERSATION].links, app[ENQUEUE])

    async def task_reminders() -> None:
        await remind_due_tasks(app[SESSIONS], ReminderSettings.of(cfg))

    return (
        # Crash recovery and retries of this process's inbox work: every process sweeps for itself.
        Job("inbox_sweep", inbox_sweep, every_s=cfg.inbox.sweep_interval_s),
        # Stored decayed scores: one process of the cluster is enough (scoring.refresh_interval_s = 0: off).
        Job("score_refresh", score_refresh, every_s=refresh_s or None, scope=CLUSTER),
        # The content library is in each process's memory: changes made through another process's API
        # reach this one within half a minute.
        Job("content_refresh", content_refresh, every_s=CONTENT_REFRESH_S),
        # Idempotency keys of mini-program submissions outlive any retry by far after a day.
        Job("submission_keys_prune", submission_keys_prune, every_s=KEYS_PRUNE_S, scope=CLUSTER),
        # The hand-off SLA timers (remind, reassign, escalate) run in the leader: its tick resumes and wakes them.
        Job(SLA_JOB, handoff_sla, every_s=SLA_TICK_S, scope=CLUSTER),
        # WeCom customer transfers waiting for transfer_result (one indexed query when none is).
        Job("customer_transfer_poll", customer_transfer_poll, every_s=POLL_EVERY_S, scope=CLUSTER),
        # Batch messages: OA template fan-out, WeCom task results, reminders and the SDR fallback (bot/batches).
        Job(BATCH_JOB, batch_messages, every_s=BATCH_EVERY_S, scope=CLUSTER),
        # Due SDR tasks: one WeCom message per member and run (bot/tasks/reminders.py).
        Job("task_reminders", task_reminders, every_s=REMIND_EVERY_S, scope=CLUSTER),
        # Nurture journeys: due steps in every process, the dormant-lead sweep in one (bot/journeys/wiring.py).
        *journey_jobs(app),
    )
