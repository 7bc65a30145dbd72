"""The request and response models of users and teams (sdr_console/api/people.py). The request models run
bot/people/accounts.py's checks first, so the API answers the 400 ``bad_field`` (409 ``exists``) it always has."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from bot.people.accounts import (
    CARD_STYLES,
    MAX_DISPLAY_NAME,
    MAX_TEAM_NAME,
    MAX_WECOM_USERID,
    AccountError,
    check_card_style,
    check_password,
    check_role,
    check_text,
    check_username,
)
from bot.web.errors import ApiError
from leads.access import ROLES
from sdr_console.api.models import Timestamp
from sdr_console.api.spec import QueryModel, RequestModel, ResponseModel

MAX_CAPACITY = 100_000  # the daily and the 30-day caps alike
MAX_WEIGHT = 1000


def api_error(exc: AccountError) -> ApiError:
    return ApiError(409 if exc.code == "exists" else 400, exc.code, str(exc))


def _member_fields(raw: Any) -> tuple[str, bool, int, bool]:
    """(username, away, capacity, remove) of a member object; capacity 0 means unlimited."""
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_field", "成员须为对象：{\"username\", \"away\"?, \"capacity\"?}")
    try:
        username = check_username(raw.get("username"))
    except AccountError as exc:
        raise api_error(exc) from exc
    away, capacity, remove = raw.get("away", False), raw.get("capacity", 0), raw.get("remove", False)
    if not isinstance(away, bool) or not isinstance(remove, bool):
        raise ApiError(400, "bad_field", "away 和 remove 须为 true 或 false")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
        raise ApiError(400, "bad_field", f"capacity 须为 0 到 {MAX_CAPACITY} 之间的整数（0 表示不限）")
    return username, away, capacity, remove


def _optional_int(raw: dict[str, Any], name: str, top: int, meaning: str) -> int | None:
    """None when the key is absent (an existing member keeps their value); else an integer 0..top."""
    if name not in raw:
        return None
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ApiError(400, "bad_field", f"{name} 须为 0 到 {top} 之间的整数（{meaning}）")
    return value


class _Lenient(RequestModel):
    model_config = ConfigDict(extra="ignore")  # unknown fields were always ignored here


class UserIn(_Lenient):
    """Without a password one is generated and answered once."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    role: Literal[ROLES]  # type: ignore[valid-type]
    password: str | None = Field(None, description="省略则自动生成")
    display_name: str | None = Field(None, max_length=100)
    wecom_userid: str | None = Field(None, max_length=64)
    team: str | None = Field(None, max_length=MAX_TEAM_NAME)

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:  # bot/people/accounts.py's checks: the answers it always gave
        try:
            checked = {"username": check_username(raw.get("username")), "role": check_role(raw.get("role")),
                       "display_name": check_text("display_name", raw.get("display_name"), 100),
                       "wecom_userid": check_text("wecom_userid", raw.get("wecom_userid"), 64),
                       "team": check_text("team", raw.get("team"), MAX_TEAM_NAME)}
            if "password" in raw:
                checked["password"] = check_password(raw["password"])
        except AccountError as exc:
            raise api_error(exc) from exc
        return checked


class MemberIn(_Lenient):
    username: str = Field(min_length=1, max_length=64)
    away: bool = False
    capacity: int = Field(0, ge=0, le=MAX_CAPACITY, description="0 表示不限")
    remove: bool = Field(False, description="true：移出团队")
    # Omitted: an existing member keeps theirs (unlike away and capacity, which have always been reset).
    monthly_cap: int | None = Field(None, ge=0, le=MAX_CAPACITY,
                                    description="30 天内最多分配的 MQL 数；0 表示不限；省略则不变（新成员为 0）")
    weight: int | None = Field(None, ge=0, le=MAX_WEIGHT,
                               description="轮转权重；0 表示按每日上限（capacity）计，未设上限则为 1；"
                                           "省略则不变（新成员为 0）")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        username, away, capacity, remove = _member_fields(raw)
        monthly_cap = _optional_int(raw, "monthly_cap", MAX_CAPACITY, "0 表示不限")
        weight = _optional_int(raw, "weight", MAX_WEIGHT, "0 表示按每日上限计，未设上限则为 1")
        return {"username": username, "away": away, "capacity": capacity, "remove": remove,
                "monthly_cap": monthly_cap, "weight": weight}


class UserPatch(RequestModel):
    """Each field present is set, absent ones keep their value; unknown fields (role, password…) are refused."""

    display_name: str | None = Field(None, min_length=1, max_length=MAX_DISPLAY_NAME)
    wecom_userid: str | None = Field(None, max_length=MAX_WECOM_USERID, description="null 表示清除")
    card_style: Literal[CARD_STYLES] | None = Field(  # type: ignore[valid-type]
        None, description="企业微信推送样式：template_card（带接受/退回按钮）或 textcard（旧版客户端）")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:  # the checks creation runs (bot/people/accounts.py), same answers
        if not isinstance(raw, dict):
            return raw
        checked = dict(raw)  # unknown keys pass through, for extra="forbid" to refuse
        try:
            if "display_name" in raw:
                checked["display_name"] = check_text("display_name", raw["display_name"], MAX_DISPLAY_NAME,
                                                     required=True)
            if "wecom_userid" in raw:
                checked["wecom_userid"] = check_text("wecom_userid", raw["wecom_userid"], MAX_WECOM_USERID)
            if "card_style" in raw:
                checked["card_style"] = check_card_style(raw["card_style"])
        except AccountError as exc:
            raise api_error(exc) from exc
        if not any(name in raw for name in ("display_name", "wecom_userid", "card_style")):
            raise ApiError(400, "bad_field", "请至少提供 display_name、wecom_userid 或 card_style 之一")
        return checked


class TeamIn(_Lenient):
    name: str = Field(min_length=1, max_length=MAX_TEAM_NAME)
    members: list[MemberIn] = Field(default_factory=list, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        try:
            name = check_text("name", raw.get("name"), MAX_TEAM_NAME, required=True)
        except AccountError as exc:
            raise api_error(exc) from exc
        members = raw.get("members", [])
        if not isinstance(members, list) or len(members) > 500:
            raise ApiError(400, "bad_field", "members 须为不超过 500 项的数组")
        return {"name": name, "members": members}


class UsersQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=10**9)] = 0


class UserOut(ResponseModel):
    id: int
    username: str
    display_name: str | None
    role: str
    wecom_userid: str | None
    card_style: str
    disabled: bool
    disabled_at: Timestamp | None
    created_at: Timestamp


class ListedUser(UserOut):
    teams: list[str]


class UserPage(ResponseModel):
    users: list[ListedUser]
    limit: int
    offset: int


class UserCreated(ResponseModel):
    user: ListedUser
    # Absent, not null, when the admin chose the password (as this API has always answered).
    password: str | None = Field(None, description="仅在自动生成时返回一次", exclude_if=lambda v: v is None)


class UserUpdated(ResponseModel):
    user: ListedUser
    changed: bool


class UserDisabled(ResponseModel):
    user: UserOut
    changed: bool


class Member(ResponseModel):
    user_id: int
    username: str
    role: str
    away: bool
    capacity: int
    monthly_cap: int
    weight: int


class TeamOut(ResponseModel):
    id: int
    name: str
    members: list[Member]


class Teams(ResponseModel):
    teams: list[TeamOut]


class OneTeam(ResponseModel):
    team: TeamOut
