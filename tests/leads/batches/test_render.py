"""Personalisation: customer fields per recipient (OA), their fallbacks in a WeCom task, byte limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.batches.message import BadMessage, check_link_url, check_miniprogram, check_text
from leads.batches.render import MAX_TEXT_BYTES, cut_bytes, render, unknown_fields


def test_fields_are_filled_per_customer_and_fall_back_in_a_wecom_task() -> None:
    template = "{name}您好，{company}的方案已更新。{sender}"
    values = {"name": "王伟", "company": "星云科技", "sender": "李娜"}
    assert render(template, values) == "王伟您好，星云科技的方案已更新。李娜"
    assert render(template, values, per_customer=False) == "客户您好，贵公司的方案已更新。李娜"
    assert render(template, {}) == "客户您好，贵公司的方案已更新。您的顾问"


def test_unknown_fields_are_named_and_refused() -> None:
    assert unknown_fields("{name} {phone} {sender} {}") == ["phone", ""]
    with pytest.raises(BadMessage) as info:
        check_text("您好 {phone}")
    assert info.value.code == "bad_field"


@pytest.mark.parametrize(("text", "code"), [("", "empty_text"), ("   ", "empty_text"), ("汉" * 1334, "text_too_long"),
                                            ("a\x00b", "bad_text")])
def test_bad_texts_are_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(BadMessage) as info:
        check_text(text)
    assert info.value.code == code


def test_a_text_of_exactly_4000_bytes_is_accepted() -> None:
    assert check_text("汉" * 1333 + "a") == "汉" * 1333 + "a"


@given(st.text(max_size=3000), st.integers(1, MAX_TEXT_BYTES))
def test_cutting_never_exceeds_the_limit_nor_splits_a_character(text: str, limit: int) -> None:
    cut = cut_bytes(text, limit)
    assert len(cut.encode("utf-8")) <= limit and text.startswith(cut)


@given(st.text(alphabet=st.sampled_from("汉a{}名"), max_size=2000), st.text(max_size=200))
def test_a_rendered_message_always_fits_wecom(template: str, name: str) -> None:
    assert len(render(template, {"name": name, "company": name}).encode("utf-8")) <= MAX_TEXT_BYTES


def test_links_and_cards_are_checked() -> None:
    check_link_url("https://example.com/a")
    for bad in ("http://example.com/a", "https://user@example.com/", "https://localhost/"):
        with pytest.raises(BadMessage):
            check_link_url(bad)
    assert check_miniprogram("产品手册", "wx123", "pages/index/index", "MEDIA").appid == "wx123"
    with pytest.raises(BadMessage):
        check_miniprogram("", "wx123", "pages/index", "MEDIA")
    with pytest.raises(BadMessage):
        check_miniprogram("手册", "wx 123", "pages/index", "MEDIA")
