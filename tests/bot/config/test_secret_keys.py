"""server.secret_key: required live, strong, a list for rotation, never derived from wechat.token."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from bot.config.core import build_config, load_config
from bot.crypto.keyring import Purpose
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
KEY_A, KEY_B = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
LIVE = {"app_id": "wx1", "token": "t", "mode": "live", "app_secret": "s"}


def _refused(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    assert info.value.key == "server.secret_key" and "'server.secret_key'" in str(info.value)
    return info.value


def test_live_mode_refuses_to_start_without_a_key():
    error = _refused({"wechat": LIVE})
    assert "live" in str(error) and "token_urlsafe" in str(error)  # says how to make one
    assert _refused({"wechat": LIVE, "server": {"secret_key": ""}})
    assert build_config({"wechat": LIVE, "server": {"secret_key": KEY_A}}).server.secret_key == (KEY_A,)


@pytest.mark.parametrize("value", [
    "short", secrets.token_hex(16), "x" * 80, [KEY_A, "tooshort"], 12345, [KEY_A, 3], KEY_A + "," + KEY_A,
    {"k": KEY_A},
])
def test_weak_malformed_or_repeated_keys_are_refused_by_name(value):
    _refused({"wechat": {"app_id": "wx1", "token": "t"}, "server": {"secret_key": value}})


def test_a_key_may_not_be_another_secret_of_the_config():
    _refused({"wechat": {**LIVE, "token": KEY_A}, "server": {"secret_key": KEY_A}})


def test_several_keys_from_toml_or_environment_the_first_one_first(tmp_path):
    assert build_config({"wechat": LIVE, "server": {"secret_key": [KEY_A, KEY_B]}}).server.secret_key == (KEY_A, KEY_B)
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    cfg = load_config(path, {"LEADRELAY_SERVER__SECRET_KEY": f"{KEY_B},{KEY_A}"})
    assert cfg.server.secret_key == (KEY_B, KEY_A)
    cfg = load_config(path, {"LEADRELAY_SERVER__SECRET_KEY": f'["{KEY_A}", "{KEY_B}"]'})
    assert cfg.server.secret_key == (KEY_A, KEY_B)
    # The ring verifies with both and signs with the first.
    old = build_config({"wechat": LIVE, "server": {"secret_key": KEY_B}}).keyring
    assert cfg.keyring.digests(Purpose.TOMBSTONE, "m")[1] == old.digest(Purpose.TOMBSTONE, "m")


def test_the_key_is_never_derived_from_the_callback_token():
    one = build_config({"wechat": {**LIVE, "token": "token-one"}, "server": {"secret_key": KEY_A}}).keyring
    two = build_config({"wechat": {**LIVE, "token": "token-two"}, "server": {"secret_key": KEY_A}}).keyring
    assert one.subkeys(Purpose.FORM_COOKIE) == two.subkeys(Purpose.FORM_COOKIE)
    # Without a key, sandbox processes sharing a callback token do not share a key either.
    a = build_config({"wechat": {"app_id": "wx1", "token": "same"}}).keyring
    b = build_config({"wechat": {"app_id": "wx1", "token": "same"}}).keyring
    assert a.subkeys(Purpose.FORM_COOKIE) != b.subkeys(Purpose.FORM_COOKIE)


def test_sandbox_without_a_key_runs_on_a_random_one_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.config.secret_keys"):
        cfg = load_config(ROOT / "config.example.toml")  # the one-command demo
    assert cfg.wechat.mode == "sandbox" and len(cfg.server.secret_key) == 1
    assert "server.secret_key is not set" in caplog.text and cfg.server.secret_key[0] not in caplog.text
