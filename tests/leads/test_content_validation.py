"""Content items: URLs are parsed (https with a real host, no credentials), values fit their columns."""

from __future__ import annotations

import dataclasses

import pytest

from leads.content import MAX_COVER, MAX_TITLE, MAX_URL, ContentItem, bad_text, https_url_problem, item_problems

ITEM = ContentItem(id="a", kind="article", title="标题", url="https://example.com/a")


@pytest.mark.parametrize("url", [
    "https://example.com", "https://example.com/a?b=c#d", "HTTPS://Example.COM/x", "https://例子.中国/白皮书.pdf",
    "https://1.2.3.4/x", "https://[2001:db8::1]/x", "https://example.com:8443/x", "https://mp.weixin.qq.com/s/abc",
])
def test_https_urls_with_a_host_are_accepted(url):
    assert https_url_problem(url) is None


@pytest.mark.parametrize("url", [
    "", "https://", "https:///x", "https://\\\\host", "https://\\host/x", "javascript:alert(1)",
    "data:text/html,x", "http://example.com", "//example.com/x", "/x", "example.com", " https://example.com",
    "https://example.com/a b", "https://example.com/\n", "https://exa\u0000mple.com", "https://u:p@example.com",
    "https://u@example.com", "https://example.com:99999/", "https://example.com:x/", "https://localhost/",
    "https://example..com/", "https://-example.com/", "https://exa_mple.com/", "https://[::1/", "ftp://example.com",
    "https:example.com", "https://exa mple.com",
])
def test_everything_else_is_refused(url):
    assert https_url_problem(url) is not None


def test_a_valid_item_has_no_problems_and_cover_may_be_empty():
    assert item_problems(ITEM) == []
    assert item_problems(dataclasses.replace(ITEM, cover="https://example.com/c.png", tags=("hr",))) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"title": "标" * (MAX_TITLE + 1)}, "title"),
    ({"url": "https://example.com/" + "a" * MAX_URL}, "url"),
    ({"cover": "https://example.com/" + "c" * MAX_COVER}, "cover"),
    ({"cover": "http://example.com/c.png"}, "cover"),
    ({"summary": "x" * 2001}, "summary"),
    ({"title": "a\x00b"}, "title"),
    ({"summary": "\ud800"}, "summary"),
    ({"tags": tuple(f"t{n}" for n in range(21))}, "tags"),
    ({"tags": ("t" * 101,)}, "tags"),
    ({"tags": (" ",)}, "tags"),
])
def test_values_that_do_not_fit_are_named(change, field):
    assert field in [name for name, _ in item_problems(dataclasses.replace(ITEM, **change))]


def test_bad_text():
    assert bad_text("a\x00") and bad_text("\udc80") and not bad_text("正常的文字 \t\n")
