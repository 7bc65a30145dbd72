"""The fake WeChat / WeCom server for the mobile inbox's live-mode tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.helpers import CORP_ID, OA_APP_ID


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatServer]:
    state = FakeWeChatState(oa_apps={OA_APP_ID: "oa-secret"}, corp_id=CORP_ID)
    async with FakeWeChatServer(state) as server:
        yield server
