"""``leadrelay wechat push-menu``: publish the OA menu from [menu] (live), or show it (sandbox)."""

from __future__ import annotations

import json
from typing import Any

from bot.config.core import Config
from bot.errors import ConfigError
from storage.redis import create_redis


def menu_payload(config: Config) -> dict[str, Any]:
    if not config.capture.menu:
        raise ConfigError("menu.buttons", "no menu is configured")
    return {"button": [dict(b) for b in config.capture.menu]}


async def push_menu(config: Config) -> str:
    """Returns what happened, for the command line."""
    payload = menu_payload(config)
    rendered = json.dumps(payload, ensure_ascii=False, indent=2)
    if config.wechat.mode != "live":
        return f"sandbox mode: the menu was not sent. It would be:\n{rendered}"
    from bot.wechat.api import OfficialAccountAPI

    redis = create_redis(config.redis.url)
    api = OfficialAccountAPI(config.wechat, redis, config.redis.key_prefix)
    try:
        await api.create_menu(payload)
    finally:
        await api.aclose()
        await redis.aclose()
    return f"menu published to {config.wechat.app_id}:\n{rendered}"
