"""[rate_limits] and the [server] deadline and proxy keys: parsed rates, defaults, and errors naming the key."""

from __future__ import annotations

import pytest

from bot.config.core import build_config, load_config
from bot.config.limits import Rate
from bot.errors import ConfigError

MINIMAL = {"wechat": {"app_id": "wx1", "token": "t"}}


def test_defaults_are_generous_per_address_and_tighter_per_user():
    cfg = build_config(MINIMAL)
    limits = cfg.rate_limits
    assert limits.enabled
    assert limits.rate("form_posts_per_ip") == Rate(120, 60.0)
    assert limits.rate("form_posts_per_openid") == Rate(10, 60.0)
    for per_ip, per_user in (("form_posts_per_ip", "form_posts_per_openid"), ("mp_forms_per_ip", "mp_forms_per_openid"),
                             ("links_per_ip", "links_per_recipient")):
        assert limits.rate(per_ip).count > limits.rate(per_user).count  # type: ignore[union-attr]
    assert (cfg.server.header_timeout_s, cfg.server.body_timeout_s, cfg.server.keepalive_timeout_s) == (10, 20, 75)
    assert cfg.server.trusted_proxies == ("127.0.0.1", "::1")


@pytest.mark.parametrize(("text", "rate"), [
    ("30/1m", Rate(30, 60.0)), ("5/10s", Rate(5, 10.0)), ("100/1h", Rate(100, 3600.0)), ("7/m", Rate(7, 60.0)),
    (" 3 / 0.5s ", Rate(3, 0.5)), ("off", None), ("OFF", None),
])
def test_rates_are_parsed(text, rate):
    assert build_config({**MINIMAL, "rate_limits": {"links_per_ip": text}}).rate_limits.rate("links_per_ip") == rate


def test_disabled_limits_have_no_rates():
    cfg = build_config({**MINIMAL, "rate_limits": {"enabled": False}})
    assert cfg.rate_limits.rate("links_per_ip") is None


@pytest.mark.parametrize(("raw", "key"), [
    ({"rate_limits": {"links_per_ip": "lots"}}, "rate_limits.links_per_ip"),
    ({"rate_limits": {"form_posts_per_openid": "0/1m"}}, "rate_limits.form_posts_per_openid"),
    ({"rate_limits": {"mp_login_per_ip": "5/0s"}}, "rate_limits.mp_login_per_ip"),
    ({"rate_limits": {"mp_forms_per_ip": "5/2d"}}, "rate_limits.mp_forms_per_ip"),
    ({"rate_limits": {"mp_forms_per_ip": "5/25h"}}, "rate_limits.mp_forms_per_ip"),
    ({"rate_limits": {"links_per_recipient": 30}}, "rate_limits.links_per_recipient"),
    ({"rate_limits": {"enabled": "yes"}}, "rate_limits.enabled"),
    ({"rate_limits": {"forms_per_ip": "1/1m"}}, "rate_limits.forms_per_ip"),
    ({"rate_limits": "on"}, "rate_limits"),
    ({"server": {"header_timeout_s": 0}}, "server.header_timeout_s"),
    ({"server": {"body_timeout_s": -1}}, "server.body_timeout_s"),
    ({"server": {"keepalive_timeout_s": "long"}}, "server.keepalive_timeout_s"),
    ({"server": {"trusted_proxies": ["nginx"]}}, "server.trusted_proxies"),
    ({"server": {"trusted_proxies": "127.0.0.1"}}, "server.trusted_proxies"),
])
def test_bad_values_name_their_key(raw, key):
    with pytest.raises(ConfigError) as info:
        build_config({**MINIMAL, **raw})
    assert info.value.key == key


def test_environment_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    cfg = load_config(path, {"LEADRELAY_RATE_LIMITS__ENABLED": "false", "LEADRELAY_RATE_LIMITS__LINKS_PER_IP": "9/1m",
                             "LEADRELAY_SERVER__TRUSTED_PROXIES": '["10.0.0.0/8"]',
                             "LEADRELAY_SERVER__HEADER_TIMEOUT_S": "5"})
    assert not cfg.rate_limits.enabled and cfg.rate_limits.links_per_ip == "9/1m"
    assert cfg.server.trusted_proxies == ("10.0.0.0/8",) and cfg.server.header_timeout_s == 5.0


def test_the_example_config_documents_the_defaults():
    from pathlib import Path

    from bot.config.limits import RateLimitsConfig

    example = load_config(Path(__file__).resolve().parents[3] / "config.example.toml")
    default = build_config(MINIMAL)
    assert example.rate_limits == RateLimitsConfig()
    assert [getattr(example.server, k) for k in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s",
                                                  "trusted_proxies")] == \
           [getattr(default.server, k) for k in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s",
                                                  "trusted_proxies")]
