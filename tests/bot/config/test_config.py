"""Configuration: validated once, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.core import build_config, load_config
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = {"wechat": {"app_id": "wx1", "token": "t"}}


def test_example_config_is_valid_and_embedded():
    cfg = load_config(ROOT / "config.example.toml")
    assert cfg.database.url.startswith("sqlite+aiosqlite://")
    assert cfg.redis.url == "memory://"
    assert cfg.callback.max_timestamp_skew_s == 300
    assert cfg.channels["expo2026"].channel == "expo"


def test_defaults():
    cfg = build_config(MINIMAL)
    assert cfg.database.url == "sqlite+aiosqlite:///leadrelay.db"
    assert cfg.redis.url == "memory://"
    assert cfg.wechat.encoding_aes_key == "" and cfg.wechat.mode == "sandbox"
    assert not cfg.wecom.enabled


@pytest.mark.parametrize(("raw", "key"), [
    ({}, "wechat"),
    ({"wechat": {"token": "t"}}, "wechat.app_id"),
    ({"wechat": {"app_id": "wx1", "token": ""}}, "wechat.token"),
    ({**MINIMAL, "server": {"port": "80"}}, "server.port"),
    ({**MINIMAL, "server": {"port": 70000}}, "server.port"),
    ({**MINIMAL, "server": {"prot": 80}}, "server.prot"),
    ({**MINIMAL, "database": {"url": "mysql://x"}}, "database.url"),
    ({**MINIMAL, "redis": {"url": "http://x"}}, "redis.url"),
    ({"wechat": {"app_id": "wx1", "token": "t", "mode": "prod"}}, "wechat.mode"),
    ({"wechat": {"app_id": "wx1", "token": "t", "mode": "live"}}, "wechat.app_secret"),
    ({"wechat": {"app_id": "wx1", "token": "t", "encoding_aes_key": "short"}}, "wechat.encoding_aes_key"),
    ({**MINIMAL, "wecom": {"corp_id": "ww1", "token": "t"}}, "wecom.encoding_aes_key"),
    ({**MINIMAL, "callback": {"max_timestamp_skew_s": -1}}, "callback.max_timestamp_skew_s"),
    ({**MINIMAL, "api": {"tokens": "abc"}}, "api.tokens"),
    ({**MINIMAL, "api": {"tokens": [""]}}, "api.tokens"),
    ({**MINIMAL, "channels": {"expo": {"channel": "expo"}}}, "channels.expo"),
    ({**MINIMAL, "nonsense": {}}, "nonsense"),
])
def test_bad_or_missing_keys_are_named(raw, key):
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    assert info.value.key == key
    assert repr(key) in str(info.value)


def test_environment_overrides_any_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    env = {"LEADRELAY_WECHAT__APP_SECRET": "s3cret", "LEADRELAY_WECHAT__MODE": "live",
           "LEADRELAY_SERVER__SECRET_KEY": "T5_oD3BnlVvEOymQ_FsqIMmL8cW3S1ous8DDhBi8Vkk0F0sBcgy2vihjRXqyPYyU",
           "LEADRELAY_SERVER__PORT": "9090", "LEADRELAY_API__TOKENS": '["a", "b"]',
           "LEADRELAY_DATABASE__URL": "postgresql+asyncpg://u@h/db", "UNRELATED": "x"}
    cfg = load_config(path, env)
    assert (cfg.wechat.app_secret, cfg.wechat.mode, cfg.server.port) == ("s3cret", "live", 9090)
    assert cfg.api.tokens == ("a", "b")
    assert cfg.database.url == "postgresql+asyncpg://u@h/db"


def test_environment_override_is_validated_too(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, {"LEADRELAY_SERVER__PORT": "eighty"})
    assert info.value.key == "server.port"


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[wechat\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_cli_fails_fast_naming_the_key(tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n[server]\nport = "x"\n', encoding="utf-8")
    assert main(["serve", "--config", str(path)]) == 2
    assert "server.port" in capsys.readouterr().err
