"""All handlers, assembled into the root router the bot dispatches to."""

from __future__ import annotations

from bot.dispatch.router import Router


def build_router() -> Router:
    from handlers import cards, conversation, oa, wecom

    root = Router("root")
    # cards before wecom: wecom.router ends with a catch-all for WeCom events.
    root.include(conversation.router, oa.router, cards.router, wecom.router)
    return root
