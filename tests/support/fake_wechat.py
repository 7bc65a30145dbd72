"""The ``fake`` fixture: the fake WeChat / WeCom API (fakes/wechat_server.py), running for one test.

Point the app at it with ``api_base_url=fake.base_url``; ``wecom`` is the bot's WeCom client pointed at it.
Its state knows the apps of make_config and capture_config (forms.fake_state); a module whose apps or users
differ overrides ``wechat_state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.wechat.api import WeComAPI
from tests.support.fakes.configs import wecom_config
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.forms import fake_state


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    return fake_state()


@pytest.fixture
async def fake(wechat_state: FakeWeChatState) -> AsyncIterator[FakeWeChatServer]:
    async with FakeWeChatServer(wechat_state) as server:
        yield server


@pytest.fixture
async def wecom(fake: FakeWeChatServer, redis_client, backend) -> AsyncIterator[WeComAPI]:  # noqa: ANN001
    api = WeComAPI(wecom_config(fake.base_url), redis_client, backend.redis_prefix)
    yield api
    await api.aclose()
