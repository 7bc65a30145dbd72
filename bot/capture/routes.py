"""Mounts the capture endpoints: H5 forms and the mini-program API (one call from bot/app.py)."""

from __future__ import annotations

from aiohttp import web

from bot.capture import miniprogram_web
from bot.capture.common import capture_ctx
from bot.capture.forms_web import show_form, submit_form


def add_capture(app: web.Application) -> None:
    app.cleanup_ctx.append(capture_ctx)
    app.router.add_get("/f/{form_id}", show_form)
    app.router.add_post("/f/{form_id}", submit_form)
    app.router.add_post("/api/mp/login", miniprogram_web.login)
    app.router.add_get("/api/mp/forms/{form_id}", miniprogram_web.describe_form)
    app.router.add_post("/api/mp/forms/{form_id}", miniprogram_web.submit)
