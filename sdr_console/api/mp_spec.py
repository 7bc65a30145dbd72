"""The OpenAPI declarations of the mini-program API (bot/capture/miniprogram_web.py), made from here.

bot.capture must not import the console (pyproject's import contracts), so its handlers keep their own input
checks and this module only declares their shapes, by route: ``SPECS`` maps (method, path) to the Spec that
/api/openapi.json uses for a route whose handler carries none. Nor does the console import bot.capture (it
would load wechatpy into every console process: tests/test_layers.py); tests/sdr_console/test_openapi.py checks
these routes exist and the shared limits agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from sdr_console.api.spec import MINI_PROGRAM, PUBLIC, RequestModel, ResponseModel, Spec

MAX_CODE_LEN = 256  # bot/capture/miniprogram_web.py MAX_CODE_LEN (a test keeps them equal)
UPSTREAM = (429, 502, 503)  # WeChat said "too often" or is unreachable; the mini-program is not configured


class MpLogin(RequestModel):
    model_config = ConfigDict(extra="ignore")
    code: str = Field(min_length=1, max_length=MAX_CODE_LEN, description="wx.login 返回的 code（只能用一次）")


class MpSession(ResponseModel):
    token: str = Field(description="小程序会话令牌：之后以 Authorization: Bearer 发送")
    expires_in: int = Field(description="有效期（秒）")


class Choice(ResponseModel):
    value: str
    label: str


class FormField(ResponseModel):
    name: str
    label: str
    type: str
    required: bool
    max_length: int | None
    choices: list[Choice]


class MpForm(ResponseModel):
    id: str
    title: str
    description: str | None
    submit_label: str | None
    privacy_text: str | None
    fields: list[FormField] = Field(description="仍需询问的字段（渐进式收集）")


class MpSubmission(RequestModel):
    model_config = ConfigDict(extra="ignore")
    fields: dict[str, Any] = Field(default_factory=dict, description="字段名 → 填写的值")
    consent: bool = Field(False, description="是否同意隐私说明")
    phone_code: str | None = Field(None, description="getPhoneNumber 返回的授权码（由微信提供已验证的手机号）")
    src: str | None = Field(None, description="来源码")
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None


class MpSubmitted(ResponseModel):
    code: str = Field(description="ok")
    message: str


_TAGS = ("mini-program",)
SPECS: dict[tuple[str, str], Spec] = {
    ("post", "/api/mp/login"): Spec("小程序登录：以 wx.login 的 code 换取会话令牌", body=MpLogin, response=MpSession,
                                    auth=PUBLIC, errors=UPSTREAM, tags=_TAGS),
    ("get", "/api/mp/forms/{form_id}"): Spec("小程序表单：仍需填写的字段", response=MpForm, auth=MINI_PROGRAM,
                                              errors=(404, *UPSTREAM), tags=_TAGS),
    ("post", "/api/mp/forms/{form_id}"): Spec("小程序表单提交（同一请求重试只存一次）", body=MpSubmission,
                                               response=MpSubmitted, auth=MINI_PROGRAM, errors=(404, 409, *UPSTREAM),
                                               tags=_TAGS),
}
