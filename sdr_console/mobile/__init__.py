"""The sales mobile inbox (/m/): an H5 for WeCom's built-in browser, 375 px wide, WeUI, Simplified Chinese.

Sign-in (signin.py: WeCom OAuth live, a single-use link in sandbox) opens a console session, so the pages call
the console's JSON API (accept / return, content links) with the same cookie and CSRF header. Pages: the inbox
tabs (inbox.py), a lead (lead.py), the chat toolbar (chat.py); share.py adds the content-link API.
"""

from __future__ import annotations

from aiohttp import web

from sdr_console.mobile import chat, inbox, lead, share, signin
from sdr_console.mobile.wecom import wecom_ctx


def add_mobile(app: web.Application) -> None:
    """Routes under /m/ and POST /api/leads/{id}/content-links. Needs the console's session store
    (sdr_console/pages add_console_pages) and, in live mode, the bot's WeCom client (bot/app.py clients_ctx)."""
    app.cleanup_ctx.append(wecom_ctx)
    signin.add_routes(app)  # /m/auth, /m/auth/callback, /m/login
    inbox.add_routes(app)  # /m/
    lead.add_routes(app)  # /m/leads/{id}
    chat.add_routes(app)  # /m/chat, /m/chat/lead, /m/api/jssdk-signature
    share.add_routes(app)  # POST /api/leads/{id}/content-links
