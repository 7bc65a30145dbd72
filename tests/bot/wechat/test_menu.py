"""``leadrelay wechat push-menu``: the configured menu reaches WeChat (live) or is only shown (sandbox)."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.wechat.menu import push_menu
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.helpers import CORP_ID, OA_APP_ID, make_config

MENU = {"buttons": [
    {"name": "白皮书", "type": "click", "key": "content:hr-whitepaper"},
    {"name": "了解我们", "sub_button": [{"name": "官网", "type": "view", "url": "https://example.com"},
                                    {"name": "价格", "type": "click", "key": "intent:pricing"}]},
]}


async def test_live_push_sends_the_menu(backend, redis_client):
    state = FakeWeChatState(oa_apps={OA_APP_ID: "oa-secret"}, corp_id=CORP_ID)
    async with FakeWeChatServer(state) as fake:
        config = make_config(backend, api_base_url=fake.base_url, menu=MENU)
        out = await push_menu(config)
        (request,) = fake.state.requests_to("/cgi-bin/menu/create")
    assert "published" in out
    buttons = request.json["button"]
    assert [b["name"] for b in buttons] == ["白皮书", "了解我们"]
    assert buttons[1]["sub_button"][1]["key"] == "intent:pricing"


async def test_sandbox_push_only_shows_the_menu(backend):
    out = await push_menu(make_config(backend, menu=MENU))
    assert out.startswith("sandbox mode") and "content:hr-whitepaper" in out


async def test_no_menu_is_a_clear_error(backend):
    with pytest.raises(ConfigError, match="menu.buttons"):
        await push_menu(make_config(backend))


@pytest.mark.parametrize(("menu", "key"), [
    ({"buttons": [{"name": "a", "type": "click"}]}, "menu.buttons[0].key"),
    ({"buttons": [{"name": "a", "type": "view"}]}, "menu.buttons[0].url"),
    ({"buttons": [{"name": "a", "type": "x", "key": "k"}]}, "menu.buttons[0].type"),
    ({"buttons": [{"name": str(i), "type": "click", "key": "k"} for i in range(4)]}, "menu.buttons"),
])
def test_bad_menus_are_refused_at_start_up(backend, menu, key):
    with pytest.raises(ConfigError) as info:
        make_config(backend, menu=menu)
    assert info.value.key == key


def test_cli_in_sandbox(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n[[menu.buttons]]\nname = "价格"\ntype = "click"\n'
                    'key = "intent:pricing"\n', encoding="utf-8")
    assert main(["wechat", "push-menu", "--config", str(path)]) == 0
    assert "intent:pricing" in capsys.readouterr().out
