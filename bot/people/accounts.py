"""Creating and disabling users, the same for the CLI and the API: checked input, a hashed password, an audit
entry in the same transaction as the change."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.handoff import RoutingConfig
from leads.access import ROLES
from leads.events import DomainEvents
from storage.models import Team, User
from storage.repos import audit
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.routing import reroute_member
from storage.repos.teams import add_team, set_member, team_by_name
from storage.repos.users import add_user, disable_user, user_by_name

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
MAX_DISPLAY_NAME, MAX_WECOM_USERID, MAX_TEAM_NAME = 100, 64, 64
# How hand-off pushes reach the user's WeCom client (users.card_style). The same two values as
# bot/handoff/cards.py's CARD_STYLES (a test keeps them equal): people and the console do not import the hand-off.
CARD_STYLES = ("template_card", "textcard")


class AccountError(ValueError):
    """Input refused; the message (Chinese) names what is wrong. ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Who:
    """Who makes the change, for the audit log."""

    label: str  # the username, "service-token" or "cli"
    user_id: int | None = None
    ip: str | None = None


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise AccountError("bad_field", "username 须为 1–64 个字母、数字或 . _ -，且以字母或数字开头")
    return username


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise AccountError("bad_field", f"role 须为以下之一：{', '.join(ROLES)}")
    return str(role)


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or "\x00" in password:
        raise AccountError("bad_field", f"password 须为 {MIN_PASSWORD}–{MAX_PASSWORD} 个字符")
    return password


def check_text(name: str, value: Any, max_len: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len or "\x00" in value:
        raise AccountError("bad_field", f"{name} 须为 1–{max_len} 个字符的字符串")
    return value.strip()


def check_card_style(style: Any) -> str:
    if style not in CARD_STYLES:
        raise AccountError("bad_field", f"card_style 须为以下之一：{', '.join(CARD_STYLES)}")
    return str(style)


def user_json(user: User, teams: list[str] | None = None) -> dict[str, Any]:
    """What may be shown of a user: never the password hash."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
            "wecom_userid": user.wecom_userid, "card_style": user.card_style,
            "disabled": user.disabled_at is not None,
            "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
            "created_at": user.created_at.isoformat(), **({"teams": teams} if teams is not None else {})}


async def _team(session: AsyncSession, name: str, who: Who) -> Team:
    team = await team_by_name(session, name)
    if team is None:
        team = await add_team(session, name)
        await audit.record(session, action="team.create", actor_user_id=who.user_id, actor_label=who.label,
                           target_kind="team", target_id=team.id, after={"name": name}, ip=who.ip)
    return team


async def create_user(session: AsyncSession, who: Who, *, username: str, role: str, password_hash: str,
                      display_name: str | None = None, wecom_userid: str | None = None,
                      team: str | None = None) -> User:
    """In the caller's transaction. AccountError("exists") when the username is taken; the team is created
    when it does not exist yet. ``password_hash``: hash_password's (slow on purpose: off the event loop)."""
    if await user_by_name(session, username) is not None:
        raise AccountError("exists", f"用户名已存在：{username}")
    user = await add_user(session, username=username, role=role, password_hash=password_hash,
                          display_name=display_name or username, wecom_userid=wecom_userid)
    await audit.record(session, action="user.create", actor_user_id=who.user_id, actor_label=who.label,
                       target_kind="user", target_id=user.id, after=user_json(user), ip=who.ip)
    if team:
        joined = await _team(session, team, who)
        await set_member(session, joined.id, user.id)
        await audit.record(session, action="team.member", actor_user_id=who.user_id, actor_label=who.label,
                           target_kind="team", target_id=joined.id,
                           after={"user_id": user.id, "away": False, "capacity": 0}, ip=who.ip)
    return user


async def update_user(session: AsyncSession, who: Who, user: User, changes: dict[str, str | None]) -> bool:
    """Sets ``changes`` (display_name, wecom_userid, card_style: checked by the caller) in the caller's
    transaction. False, and no audit entry, when nothing differs from what is stored."""
    changed = {name: value for name, value in changes.items() if getattr(user, name) != value}
    if not changed:
        return False
    before = user_json(user)
    for name, value in changed.items():
        setattr(user, name, value)
    await session.flush()
    await audit.record(session, action="user.update", actor_user_id=who.user_id, actor_label=who.label,
                       target_kind="user", target_id=user.id, before=before, after=user_json(user), ip=who.ip)
    return True


async def disable(session: AsyncSession, who: Who, user: User, *, routing: RoutingConfig | None = None,
                  events: DomainEvents[EventTx] = NO_SUBSCRIBERS) -> bool:
    """Disables the user; their pending MQLs are routed to others in the same transaction (rule
    "member_disabled", heard by ``events``: the new assignees get their cards)."""
    before = user_json(user)
    if not await disable_user(session, user):
        return False
    await audit.record(session, action="user.disable", actor_user_id=who.user_id, actor_label=who.label,
                       target_kind="user", target_id=user.id, before=before, after=user_json(user), ip=who.ip)
    assert user.disabled_at is not None
    await reroute_member(EventTx(session, events), user.id, routing or RoutingConfig(), at=user.disabled_at)
    return True
