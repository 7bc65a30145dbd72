"""A job: a name, when it runs (an interval or an APScheduler trigger), where (every process or one per
cluster) and the coroutine it runs. The app registers its jobs at start-up (bot/jobs/builtin.py) and
``[jobs] enabled`` picks which of them this process schedules."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.errors import ConfigError

PROCESS, CLUSTER = "process", "cluster"  # every process runs it / one process of the cluster (the leader) does
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: Callable[[], Awaitable[Any]]  # a fresh coroutine per run
    every_s: float | None = None
    trigger: BaseTrigger | None = None
    scope: str = PROCESS

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"job name {self.name!r}: a-z, 0-9 and _, starting with a letter")
        if self.every_s is not None and self.trigger is not None:
            raise ValueError(f"job {self.name!r}: an interval or a trigger, not both")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError(f"job {self.name!r}: the interval must be positive")
        if self.scope not in (PROCESS, CLUSTER):
            raise ValueError(f"job {self.name!r}: scope must be {PROCESS!r} or {CLUSTER!r}")

    def schedule(self) -> BaseTrigger | None:
        """When it runs; None: registered (its name is valid in ``[jobs] enabled``) but off by its own
        configuration, e.g. ``scoring.refresh_interval_s = 0``."""
        if self.trigger is not None:
            return self.trigger
        return IntervalTrigger(seconds=self.every_s) if self.every_s is not None else None


def enabled_jobs(jobs: Iterable[Job], enabled: tuple[str, ...] | None) -> tuple[Job, ...]:
    """The registered jobs ``[jobs] enabled`` names (all of them when it is left out), in registration order.

    An unknown name fails start-up: a typo would otherwise switch a job off without a word.
    """
    registered: dict[str, Job] = {}
    for job in jobs:
        if job.name in registered:
            raise ValueError(f"job {job.name!r} is registered twice")
        registered[job.name] = job
    if enabled is None:
        return tuple(registered.values())
    unknown = [name for name in enabled if name not in registered]
    if unknown:
        raise ConfigError("jobs.enabled", f"unknown job {unknown[0]!r} (known: {', '.join(registered)})")
    return tuple(job for name, job in registered.items() if name in enabled)
