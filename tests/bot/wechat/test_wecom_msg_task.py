"""WeComAPI.add_msg_template and the outbox method "wecom.add_msg_template" (a console reply to a WeCom contact:
a message task the owning member confirms), against the fake WeCom server."""

from __future__ import annotations

import pytest

from bot.errors import WeChatAPIError
from bot.outbox.methods import METHODS, ApiClients
from tests.support.fakes.wechat_state import FakeWeChatState


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    return FakeWeChatState()  # the apps of fakes/configs.py, which this client uses


async def test_the_outbox_method_creates_a_task_for_the_member(fake, wecom) -> None:
    fake.state.register_employee("sales_chen")
    method = METHODS["wecom.add_msg_template"]
    assert method.target == "wecom" and not method.service_window and not method.marketing
    answer = await method.send(ApiClients(wecom=wecom),
                               {"sender": "sales_chen", "external_userid": "wm-dave", "content": "您好"})
    assert answer["msgid"]
    (sent,) = fake.state.sent
    assert (sent["kind"], sent["chat_type"], sent["sender"], sent["external_userid"], sent["text"]) == (
        "wecom.msg_task", "single", "sales_chen", ["wm-dave"], {"content": "您好"})
    assert fake.state.requests_to("/cgi-bin/gettoken")[0].query["corpsecret"] == "contact-secret"


async def test_an_unknown_member_is_an_error(fake, wecom) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await wecom.add_msg_template("nobody", "wm-dave", "您好")
    assert info.value.errcode == 81013 and fake.state.sent == []
