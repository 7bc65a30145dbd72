"""The journeys' place in the app: their subscriber on the domain events and their jobs in the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.jobs.registry import CLUSTER, PROCESS, Job
from bot.journeys.enrol import EnrolLeads, listened_events
from bot.journeys.inactive import SWEEP_EVERY_S, sweep_inactive
from bot.journeys.runner import JourneyRunner
from bot.keys import CONFIG, EVENTS, SESSIONS
from leads.events import DomainEvents
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.config.core import Config
    from storage.repos.events import EventTx

def journey_events(config: Config, events: DomainEvents[EventTx]) -> DomainEvents[EventTx]:
    """``events`` plus the enrolment subscriber, on the event types the configured journeys start from."""
    actions = config.scoring.rules.actions
    enrol = EnrolLeads(config.journeys, actions)
    for event_type in listened_events(config.journeys, actions):
        events = events.subscribe(event_type, enrol)
    return events


def runner_of(app: web.Application) -> JourneyRunner:
    cfg = app[CONFIG]
    return JourneyRunner(app[SESSIONS], app[EVENTS], cfg.journeys, cfg.nurture.send_policy(),
                         sandbox=cfg.wechat.mode == "sandbox", base_url=cfg.server.public_url.rstrip("/"),
                         batch=cfg.nurture.batch_size)


def journey_jobs(app: web.Application) -> tuple[Job, ...]:
    cfg = app[CONFIG]
    journeys = cfg.journeys
    sleepers = any(j.trigger.kind == "inactive_days" for j in journeys)

    async def journey_steps() -> None:
        await runner_of(app).run_due()

    async def journey_inactive_sweep() -> None:
        await sweep_inactive(app[SESSIONS], app[EVENTS], journeys, utcnow())

    return (
        # Every process runs due steps: claims skip each other's locked enrolments, so they share the work.
        Job("journey_steps", journey_steps, every_s=cfg.nurture.step_interval_s if journeys else None, scope=PROCESS),
        Job("journey_inactive_sweep", journey_inactive_sweep, every_s=SWEEP_EVERY_S if sleepers else None,
            scope=CLUSTER),
    )
