"""``[bant]``: which BANT fields a hand-off requires, checked at start-up and named in the error."""

from __future__ import annotations

import pytest

from bot.config.core import load_config
from bot.errors import ConfigError
from leads.bant import FIELDS
from tests.support.helpers import make_config


def test_defaults_require_all_four_and_the_example_file_says_so(backend) -> None:
    assert make_config(backend).bant.required == FIELDS
    assert load_config("config.example.toml").bant.required == FIELDS


def test_any_subset_is_accepted(backend) -> None:
    assert make_config(backend, bant={"required": ["need"]}).bant.required == ("need",)
    assert make_config(backend, bant={"required": []}).bant.required == ()


@pytest.mark.parametrize(("values", "key"), [
    ({"required": ["budget", "money"]}, "bant.required"),
    ({"required": ["need", "need"]}, "bant.required"),
    ({"required": "need"}, "bant.required"),
    ({"required": [1]}, "bant.required"),
    ({"optional": ["need"]}, "bant.optional"),
])
def test_bad_values_name_their_key(backend, values, key) -> None:
    with pytest.raises(ConfigError) as exc:
        make_config(backend, bant=values)
    assert exc.value.key == key


def test_environment_overrides(backend) -> None:
    config = load_config("config.example.toml", {"LEADRELAY_BANT__REQUIRED": '["need", "timeline"]'})
    assert config.bant.required == ("need", "timeline")
