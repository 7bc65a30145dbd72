"""``[console]``: session lifetimes, checked at start-up and named in the error."""

from __future__ import annotations

import pytest

from bot.config.core import load_config
from bot.errors import ConfigError
from tests.support.helpers import make_config


def test_defaults_and_the_example_file(backend) -> None:
    config = make_config(backend)
    assert (config.console.session_idle_s, config.console.session_max_s) == (8 * 3600, 7 * 24 * 3600)
    example = load_config("config.example.toml")
    assert example.console == config.console
    assert example.rate_limits.rate("console_login_per_user") is not None


@pytest.mark.parametrize(("values", "key"), [
    ({"session_idle_s": 0}, "console.session_idle_s"),
    ({"session_max_s": 100 * 24 * 3600}, "console.session_max_s"),
    ({"session_idle_s": 7200, "session_max_s": 3600}, "console.session_idle_s"),
    ({"session_idle_s": "8h"}, "console.session_idle_s"),
    ({"idle": 1}, "console.idle"),
])
def test_bad_values_name_their_key(backend, values, key) -> None:
    with pytest.raises(ConfigError) as exc:
        make_config(backend, console=values)
    assert exc.value.key == key


def test_environment_overrides(backend) -> None:
    config = load_config("config.example.toml", {"LEADRELAY_CONSOLE__SESSION_IDLE_S": "600"})
    assert config.console.session_idle_s == 600
