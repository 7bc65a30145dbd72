"""All handlers, assembled into the root router the bot dispatches to."""

from __future__ import annotations

from bot.dispatch import Router


def build_router() -> Router:
    from handlers import oa, wecom

    root = Router("root")
    root.include(oa.router, wecom.router)
    return root
