"""The audience rules of a batch at a moment, from the configuration: the customer's receive-limit period and
limit ([batch]), the weekly frequency caps ([nurture] weekly_cap) and whether OA followers can be reached (an
OA template, outbound.fallback_template_id)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config.core import Config
from leads.batches.limits import CHINA, period_start
from leads.journeys.policy import ANY_CHANNEL
from storage.repos.batch_audience import AudienceRules

CHANNELS = ("wecom", "oa")


def audience_rules(cfg: Config, now: datetime, channels: tuple[str, ...] = CHANNELS) -> AudienceRules:
    caps = cfg.nurture.weekly_cap
    return AudienceRules(
        period_start=period_start(cfg.batch.customer_limit_period, now),
        receive_limit=cfg.batch.limit_on(now.astimezone(CHINA).date()),
        week_ago=now - timedelta(days=7),
        caps={c: caps.get(c, caps.get(ANY_CHANNEL)) for c in CHANNELS},
        oa_template=bool(cfg.capture.outbound.fallback_template_id),
        channels=channels)
