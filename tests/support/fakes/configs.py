"""Configs pointing LeadRelay's API clients at a fake server, with the fake's default credentials."""

from __future__ import annotations

from typing import Any

from bot.config.core import WeChatConfig, WeComConfig


def oa_config(base_url: str, **overrides: Any) -> WeChatConfig:
    values: dict[str, Any] = {"app_id": "wx-test-app", "token": "callback-token", "app_secret": "oa-secret",
                              "api_base_url": base_url, "mode": "live"}
    return WeChatConfig(**{**values, **overrides})


def wecom_config(base_url: str, **overrides: Any) -> WeComConfig:
    values: dict[str, Any] = {"corp_id": "ww-test-corp", "agent_id": 1000002, "secret": "app-secret",
                              "contact_secret": "contact-secret", "token": "callback-token",
                              "api_base_url": base_url}
    return WeComConfig(**{**values, **overrides})
