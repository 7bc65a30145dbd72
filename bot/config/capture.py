"""Configuration of the conversation and capture features: the bot's words, intents, welcome messages,
content library, OA menu, forms and the mini-program. Validated with the same rules as bot/config/core.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.config.outbound import OutboundConfig, validate_outbound
from bot.config.validate import build_section, check, str_map, string, table, tables, unique
from bot.errors import ConfigError
from leads.content import ContentItem, item_problems

CONTENT_KINDS = ("article", "whitepaper", "video", "livestream", "case_study")
BUYING_STAGES = ("awareness", "consideration", "decision")
# The field catalogue forms are built from; leads/forms.py validates each kind.
FORM_FIELDS = ("name", "phone", "email", "company", "job_title", "department", "company_size", "company_type",
               "industry", "region", "product_interest")
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class BotConfig:
    """What the bot says when it has nothing better to say, and the consent keywords."""

    fallback_reply: str = "您好，您的问题已转给专属顾问，我们会在工作时间内尽快回复您。"
    unsubscribe_keywords: tuple[str, ...] = ("退订", "TD", "unsubscribe")
    unsubscribe_reply: str = "您已退订营销消息，我们将不再向您推送。如需恢复，请回复“订阅”。"
    resubscribe_keywords: tuple[str, ...] = ("订阅",)
    resubscribe_reply: str = "已为您恢复消息推送，感谢关注！"
    delete_keywords: tuple[str, ...] = ("删除我的数据",)
    delete_reply: str = "已收到您的删除请求：您的个人信息将在几秒内删除，我们仅保留不含个人信息的统计数据。"
    privacy_text: str = "我已阅读并同意《隐私政策》，同意贵公司为提供产品信息与服务联系我。"


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    keywords: tuple[str, ...]
    reply: str = ""
    content: tuple[str, ...] = ()  # content ids sent as news (articles)
    score_event: str = ""  # a touchpoint of this kind is recorded when the intent matches
    priority: int = 0  # higher wins a tie


@dataclass(frozen=True, slots=True)
class WelcomeConfig:
    oa_default: str = "欢迎关注！回复“价格”“案例”“白皮书”了解更多，或直接留言，我们的顾问会尽快回复。"
    oa_by_channel: dict[str, str] = field(default_factory=dict)  # channel (from [channels]) -> text
    wecom_default: str = "您好，我是您的专属顾问，很高兴为您服务！"
    wecom_by_state: dict[str, str] = field(default_factory=dict)  # "contact me" State -> text


@dataclass(frozen=True, slots=True)
class FormDef:
    id: str
    title: str
    fields: tuple[str, ...]
    required: tuple[str, ...] = ()
    description: str = ""
    submit_label: str = "提交"
    success_message: str = "提交成功，我们的顾问会尽快与您联系。"
    score_event: str = ""  # e.g. "request_demo"
    channel: str = ""  # default source when the link carries no source code
    scene: str = "form"


@dataclass(frozen=True, slots=True)
class MiniProgramConfig:
    app_id: str = ""
    app_secret: str = ""
    session_ttl_s: int = 7 * 24 * 3600

    @property
    def enabled(self) -> bool:
        return bool(self.app_id)


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    bot: BotConfig = field(default_factory=BotConfig)
    intents: tuple[Intent, ...] = ()
    welcome: WelcomeConfig = field(default_factory=WelcomeConfig)
    content: tuple[ContentItem, ...] = ()
    content_file: str = ""  # a TOML file with more [[items]], loaded at start-up
    menu: tuple[dict[str, Any], ...] = ()  # OA menu buttons, as WeChat's menu/create expects them
    forms: tuple[FormDef, ...] = ()
    mini_program: MiniProgramConfig = field(default_factory=MiniProgramConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)

    def content_by_id(self) -> dict[str, ContentItem]:
        return {item.id: item for item in self.content}


CAPTURE_SECTIONS = ("bot", "intents", "welcome", "content", "menu", "forms", "mini_program", "outbound")


def build_capture(raw: dict[str, Any]) -> CaptureConfig:
    content_table = raw.get("content", {})
    table("content", content_table)
    unknown = set(content_table) - {"file", "items"}
    if unknown:
        raise ConfigError(f"content.{sorted(unknown)[0]}", "unknown key")
    items = tables("content.items", content_table.get("items", []))
    content = tuple(_content_item(i, entry) for i, entry in enumerate(items))
    return CaptureConfig(
        bot=build_section("bot", BotConfig, raw.get("bot", {})),
        intents=tuple(_intent(i, entry) for i, entry in enumerate(tables("intents", raw.get("intents", [])))),
        welcome=_welcome(raw.get("welcome", {})),
        content=content,
        content_file=string("content.file", content_table.get("file", "")),
        menu=_menu(raw.get("menu", {})),
        forms=tuple(_form(i, entry) for i, entry in enumerate(tables("forms", raw.get("forms", [])))),
        mini_program=build_section("mini_program", MiniProgramConfig, raw.get("mini_program", {})),
        outbound=build_section("outbound", OutboundConfig, raw.get("outbound", {})),
    )


def validate_capture(c: CaptureConfig) -> None:
    ids = [item.id for item in c.content]
    unique("content.items", ids)
    known = set(ids)
    unique("intents", [i.name for i in c.intents])
    for intent in c.intents:
        for content_id in intent.content:
            check(content_id in known or bool(c.content_file), f"intents.{intent.name}.content",
                   f"unknown content id {content_id!r}")
    unique("forms", [f.id for f in c.forms])
    validate_outbound(c.outbound)


def parse_content_items(raw: Any, origin: str) -> tuple[ContentItem, ...]:
    """Items of a content file (``[[items]]``) or an API payload, validated like the config's."""
    table(origin, raw)
    return tuple(_content_item(i, entry, origin=f"{origin}.items") for i, entry in
                 enumerate(tables(f"{origin}.items", raw.get("items", []))))


def _intent(index: int, entry: Any) -> Intent:
    key = f"intents[{index}]"
    table(key, entry)
    intent = build_section(key, Intent, entry)
    check(bool(_ID.match(intent.name)), f"{key}.name", "must be a lowercase identifier")
    check(bool(intent.keywords) and all(k.strip() for k in intent.keywords), f"{key}.keywords",
           "must list at least one non-empty keyword")
    check(bool(intent.reply or intent.content), f"{key}.reply", "an intent needs a reply or content")
    return intent


def _content_item(index: int, entry: Any, origin: str = "content.items") -> ContentItem:
    key = f"{origin}[{index}]"
    table(key, entry)
    item = build_section(key, ContentItem, entry)
    check(bool(_ID.match(item.id)), f"{key}.id", "must be a lowercase identifier (a-z, 0-9, - and _)")
    check(item.kind in CONTENT_KINDS, f"{key}.kind", f"must be one of {', '.join(CONTENT_KINDS)}")
    check(item.stage in BUYING_STAGES, f"{key}.stage", f"must be one of {', '.join(BUYING_STAGES)}")
    check(bool(item.title.strip()), f"{key}.title", "must not be empty")
    for name, problem in item_problems(item):  # lengths of the columns, https:// URLs with a real host
        raise ConfigError(f"{key}.{name}", problem)
    return item


def _form(index: int, entry: Any) -> FormDef:
    key = f"forms[{index}]"
    table(key, entry)
    form = build_section(key, FormDef, entry)
    check(bool(_ID.match(form.id)), f"{key}.id", "must be a lowercase identifier")
    check(bool(form.fields), f"{key}.fields", "must list at least one field")
    for name in form.fields:
        check(name in FORM_FIELDS, f"{key}.fields", f"unknown field {name!r}; known: {', '.join(FORM_FIELDS)}")
    for name in form.required:
        check(name in form.fields, f"{key}.required", f"{name!r} is not one of the form's fields")
    check("phone" in form.fields or "email" in form.fields, f"{key}.fields",
           "a lead-capture form needs phone or email")
    return form


def _welcome(raw: Any) -> WelcomeConfig:
    table("welcome", raw)
    unknown = set(raw) - {"oa_default", "oa_by_channel", "wecom_default", "wecom_by_state"}
    if unknown:
        raise ConfigError(f"welcome.{sorted(unknown)[0]}", "unknown key")
    defaults = WelcomeConfig()
    return WelcomeConfig(
        oa_default=string("welcome.oa_default", raw.get("oa_default", defaults.oa_default)),
        oa_by_channel=str_map("welcome.oa_by_channel", raw.get("oa_by_channel", {})),
        wecom_default=string("welcome.wecom_default", raw.get("wecom_default", defaults.wecom_default)),
        wecom_by_state=str_map("welcome.wecom_by_state", raw.get("wecom_by_state", {})),
    )


def _menu(raw: Any) -> tuple[dict[str, Any], ...]:
    table("menu", raw)
    unknown = set(raw) - {"buttons"}
    if unknown:
        raise ConfigError(f"menu.{sorted(unknown)[0]}", "unknown key")
    buttons = tables("menu.buttons", raw.get("buttons", []))
    check(len(buttons) <= 3, "menu.buttons", "WeChat allows at most 3 top-level buttons")
    for i, button in enumerate(buttons):
        _button(f"menu.buttons[{i}]", button, top=True)
    return tuple(buttons)


def _button(key: str, button: Any, *, top: bool) -> None:
    table(key, button)
    check(isinstance(button.get("name"), str) and bool(button["name"]), f"{key}.name", "must not be empty")
    subs = button.get("sub_button")
    if subs is not None:
        check(top, f"{key}.sub_button", "only top-level buttons have sub buttons")
        subs = tables(f"{key}.sub_button", subs)
        check(1 <= len(subs) <= 5, f"{key}.sub_button", "must have 1 to 5 buttons")
        for j, sub in enumerate(subs):
            _button(f"{key}.sub_button[{j}]", sub, top=False)
        return
    kind = button.get("type")
    check(kind in ("click", "view", "miniprogram"), f"{key}.type", "must be click, view or miniprogram")
    if kind == "click":
        check(isinstance(button.get("key"), str) and bool(button["key"]), f"{key}.key", "a click button needs a key")
    else:
        check(isinstance(button.get("url"), str) and bool(button["url"]), f"{key}.url", "needs a url")
