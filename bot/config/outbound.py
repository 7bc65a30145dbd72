"""The ``[outbound]`` section: WeChat's limits on what we send, and the fallbacks when a channel is closed."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config.validate import check


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """Platform limits on what we send, and the fallbacks when a channel is closed."""

    customer_service_window_h: int = 48  # OA customer-service messages only this long after the user's last action
    fallback_template_id: str = ""  # template message sent instead when the window has closed ("" = none)
    fallback_template_url: str = ""
    wecom_member_per_minute: int = 30  # WeCom app messages to one employee; the excess is silently dropped
    wecom_member_per_hour: int = 1000


def validate_outbound(o: OutboundConfig) -> None:
    check(1 <= o.customer_service_window_h <= 48, "outbound.customer_service_window_h", "must be 1 to 48")
    check(o.wecom_member_per_minute >= 1, "outbound.wecom_member_per_minute", "must be at least 1")
    check(o.wecom_member_per_hour >= o.wecom_member_per_minute, "outbound.wecom_member_per_hour",
          "must be at least wecom_member_per_minute")
