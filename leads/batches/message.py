"""A batch message as composed: a text, optionally a content link or a mini-program card; checked here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leads.batches.render import FIELDS, MAX_TEXT_BYTES, unknown_fields
from leads.content import bad_text, https_url_problem

MAX_TITLE_BYTES = 128  # a link / mini-program card title, as WeCom truncates it
MAX_PAGE = 200


class BadMessage(ValueError):
    """``code`` for the API (400), ``message`` in Chinese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class MiniProgram:
    title: str
    appid: str
    page: str
    pic_media_id: str


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    content_id: str | None = None  # a content library item, sent as a tracked link
    miniprogram: MiniProgram | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.content_id is not None:
            out["content_id"] = self.content_id
        if self.miniprogram is not None:
            mp = self.miniprogram
            out["miniprogram"] = {"title": mp.title, "appid": mp.appid, "page": mp.page,
                                  "pic_media_id": mp.pic_media_id}
        return out


def check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise BadMessage("empty_text", "请填写消息内容")
    if bad_text(text):
        raise BadMessage("bad_text", "消息内容含有不允许的字符")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise BadMessage("text_too_long", f"消息内容最多 {MAX_TEXT_BYTES} 字节（约 {MAX_TEXT_BYTES // 3} 个汉字）")
    if unknown := unknown_fields(text):
        known = "、".join("{" + k + "}" for k in FIELDS)
        raise BadMessage("bad_field", f"未知的个性化字段 {{{unknown[0][:20]}}}；可用：{known}")
    return text


def check_miniprogram(title: str, appid: str, page: str, pic_media_id: str) -> MiniProgram:
    title = title.strip()
    if not title or len(title.encode("utf-8")) > MAX_TITLE_BYTES or bad_text(title):
        raise BadMessage("bad_miniprogram", f"小程序卡片标题必填，最多 {MAX_TITLE_BYTES} 字节")
    for name, value in (("appid", appid), ("page", page), ("pic_media_id", pic_media_id)):
        if not value.strip() or len(value) > MAX_PAGE or bad_text(value) or any(c.isspace() for c in value):
            raise BadMessage("bad_miniprogram", f"小程序卡片的 {name} 无效")
    return MiniProgram(title, appid.strip(), page.strip(), pic_media_id.strip())


def check_link_url(url: str) -> None:
    """A content item's URL must be a real https URL before it is sent to customers."""
    if problem := https_url_problem(url):
        raise BadMessage("bad_link", f"链接无效：{problem}")
