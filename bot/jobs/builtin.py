"""The jobs LeadRelay registers. Each reads what it needs from the app when it runs: the engine, the inbox
processor and the content library exist only once the app's contexts have started."""

from __future__ import annotations

from aiohttp import web

from bot.jobs.registry import CLUSTER, Job
from bot.keys import CONFIG, CONVERSATION, ENGINE, EVENTS, PROCESSOR, SCORING, SESSIONS
from storage.repos.score_refresh import refresh_scores

CONTENT_REFRESH_S = 30.0


def builtin_jobs(app: web.Application) -> tuple[Job, ...]:
    cfg = app[CONFIG]
    refresh_s = cfg.scoring.refresh_interval_s

    async def inbox_sweep() -> None:
        await app[PROCESSOR].sweep()

    async def score_refresh() -> None:
        await refresh_scores(app[SESSIONS], app[SCORING], older_than_s=refresh_s, events=app[EVENTS])

    async def content_refresh() -> None:
        await app[CONVERSATION].content.refresh(app[ENGINE])

    return (
        # Crash recovery and retries of this process's inbox work: every process sweeps for itself.
        Job("inbox_sweep", inbox_sweep, every_s=cfg.inbox.sweep_interval_s),
        # Stored decayed scores: one process of the cluster is enough (scoring.refresh_interval_s = 0: off).
        Job("score_refresh", score_refresh, every_s=refresh_s or None, scope=CLUSTER),
        # The content library is in each process's memory: changes made through another process's API
        # reach this one within half a minute.
        Job("content_refresh", content_refresh, every_s=CONTENT_REFRESH_S),
    )
