"""The intent matcher (leads/intents.py): jieba segmentation + keywords, deterministic ties."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from leads.intents import IntentMatcher, build_tokenizer, matches_any


@dataclass(frozen=True)
class Spec:
    name: str
    keywords: tuple[str, ...]
    priority: int = 0


INTENTS = [
    Spec("pricing", ("价格", "报价", "多少钱")),
    Spec("enterprise", ("企业版价格", "企业版")),
    Spec("cases", ("案例", "客户案例")),
    Spec("demo", ("演示", "试用"), priority=5),
    Spec("english", ("price",)),
]


@pytest.fixture(scope="module")
def matcher(jieba_base) -> IntentMatcher:
    return IntentMatcher(INTENTS, build_tokenizer([k for i in INTENTS for k in i.keywords], base=jieba_base))


@pytest.mark.parametrize(("text", "intent"), [
    ("你们的产品价格多少", "pricing"),  # 价格 inside 产品价格
    ("产品报价单发我一下", "pricing"),
    ("企业版价格多少", "enterprise"),  # the more specific keyword wins
    ("有没有客户案例", "cases"),
    ("想看案例也想约演示", "demo"),  # priority beats specificity
    ("What is the PRICE", "english"),  # case-insensitive
    ("评价格外好", None),  # 评价 / 格外: no 价格 across a word boundary
    ("你好", None),
    ("", None),
])
def test_matches(matcher, text, intent):
    found = matcher.match(text)
    assert (found.name if found else None) == intent


def test_ties_break_by_configuration_order(jieba_base):
    specs = [Spec("first", ("方案",)), Spec("second", ("方案",))]
    m = IntentMatcher(specs, build_tokenizer(["方案"], base=jieba_base))
    assert m.match("有什么方案").name == "first"


def test_matched_keywords_are_reported_longest_first(matcher):
    assert matcher.match("企业版价格多少").keywords == ("企业版价格", "企业版")


def test_latin_consent_words_must_be_the_whole_message(jieba_base):
    words = ("退订", "TD", "unsubscribe")
    matcher = IntentMatcher(INTENTS, build_tokenizer(words, base=jieba_base), extra_keywords=words)
    assert matches_any(matcher, "TD", words)
    assert matches_any(matcher, " td ", words)
    assert matches_any(matcher, "我要退订", words)
    assert not matches_any(matcher, "TD是什么意思", words)
    assert not matches_any(matcher, "how do I unsubscribe from this", words)


def test_a_fresh_tokenizer_loads_the_dictionary_itself():
    tokenizer = build_tokenizer(["产品价格"])
    assert tokenizer.initialized and "产品价格" in tokenizer.lcut("你们的产品价格")


def test_messages_without_any_keyword_are_not_segmented(matcher):
    assert matcher.tokens("你们公司在哪个城市") == frozenset(["你们公司在哪个城市"])
    assert "价格" in matcher.tokens("你们的产品价格")
