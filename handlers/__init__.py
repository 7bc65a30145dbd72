"""All handlers, assembled into the root router the bot dispatches to."""

from __future__ import annotations

from bot.dispatch.router import Router


def build_router() -> Router:
    from handlers import conversation, oa, wecom

    root = Router("root")
    root.include(conversation.router, oa.router, wecom.router)
    return root
