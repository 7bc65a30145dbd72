"""``GET /console/batches/new``: compose a batch message — a segment, the text, an optional content link, the
channels; ``POST /console/batches/new`` with ``action=preview`` shows who would receive it per channel and
member and every exclusion with its reason and count, ``action=send`` queues it and goes to its report.

A plain form post (CSRF token field, checked by the console guard): it works without scripts, and the preview
is exactly what ``POST /api/batches/preview`` answers, since both call the API's ``preview_of`` and ``send``
(sdr_console/api/batches.py) with the same checked ``BatchIn``. Needs ``batch.send``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.keys import CONVERSATION, SESSIONS
from bot.web.errors import ApiError
from leads import access
from leads.batches.render import FALLBACKS, FIELDS, MAX_TEXT_BYTES
from sdr_console.api.auth import lead_action
from sdr_console.api.batch_models import BatchIn, BatchPreview
from sdr_console.api.batches import preview_of, send
from sdr_console.pages.batches import PATH, allowed, page
from sdr_console.web.forms import read_form, text_field
from sdr_console.web.guard import SignedIn
from sdr_console.web.render import render
from storage.repos.batch_queue import member_names
from storage.repos.segments import all_segments

NEW = PATH + "/new"
SEGMENTS_SHOWN = 200
CHANNEL_CHOICES = (("wecom", "企业微信群发", "由负责成员在企业微信中确认发送"),
                   ("oa", "公众号模板消息", "发给只关注了公众号、没有企业微信好友关系的潜客"))
BAD_FORM = "请选择分群并填写消息内容（最多 4000 字节），至少选择一个渠道。"


def _form_values(form: Any) -> dict[str, Any]:
    """What the form posted, as it is shown again (strings; nothing trusted yet)."""
    if form is None:
        return {"segment_id": "", "text": "", "content_id": "", "channels": []}
    channels = [c for c in form.getall("channels", []) if c in ("wecom", "oa")]
    return {"segment_id": text_field(form, "segment_id") or "", "text": text_field(form, "text") or "",
            "content_id": text_field(form, "content_id") or "", "channels": channels}


def _body(values: dict[str, Any]) -> BatchIn:
    raw = values["segment_id"]
    return BatchIn.model_validate({
        "segment_id": int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0,
        "text": values["text"], "content_id": values["content_id"] or None, "channels": values["channels"]})


async def _compose(request: web.Request, current: SignedIn, values: dict[str, Any], *, status: int = 200,
                   error: str = "", preview: BatchPreview | None = None) -> web.Response:
    async with request.app[SESSIONS]() as session:
        segments = [(s.id, s.name) for s, _ in await all_segments(session, SEGMENTS_SHOWN, 0)]
        names = await member_names(session, [m.member for m in preview.members]) if preview else {}
    items = [(i.id, i.title) for i in request.app[CONVERSATION].content.all()]
    return render(request, "batch_new.html", status, **page(
        current, title="新建群发", values=values, segments=segments, items=items, choices=CHANNEL_CHOICES,
        error=error, preview=preview, member_names=names, fields=FIELDS, fallbacks=FALLBACKS,
        max_bytes=MAX_TEXT_BYTES))


@lead_action(access.BATCH_SEND)  # the authorisation matrix reads the declared action from the route's handler
async def new_page(request: web.Request) -> web.StreamResponse:
    current, refused = await allowed(request, access.BATCH_SEND)
    if refused is not None:
        return refused
    raw = request.query.get("segment_id", "")
    values = {"segment_id": raw if raw.isascii() and raw.isdigit() else "", "text": "", "content_id": "",
              "channels": ["wecom", "oa"]}
    return await _compose(request, current, values)


@lead_action(access.BATCH_SEND)
async def post_new(request: web.Request) -> web.StreamResponse:
    current, refused = await allowed(request, access.BATCH_SEND)
    if refused is not None:
        return refused
    form = await read_form(request)
    values = _form_values(form)
    action = text_field(form, "action") if form is not None else None
    try:
        body = _body(values)
        if action == "send":
            created = await send(request, body)
            raise web.HTTPSeeOther(f"{PATH}/{created.id}?sent=1")
        return await _compose(request, current, values, preview=await preview_of(request, body))
    except ValidationError:
        return await _compose(request, current, values, status=400, error=BAD_FORM)
    except ApiError as exc:  # the API's own refusal (bad link, unknown field, unknown segment): its message
        return await _compose(request, current, values, status=exc.status, error=exc.message)


def add_routes(app: web.Application) -> None:
    app.router.add_get(NEW, new_page)
    app.router.add_post(NEW, post_new)
