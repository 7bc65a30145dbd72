"""Understanding short Chinese questions: jieba segmentation + configured keywords → one intent.

Keywords are added to the tokenizer's dictionary, and messages are cut in search mode, which also emits
the dictionary words inside longer tokens: "产品价格" yields "产品", "价格" and "产品价格", so the keyword
"价格" matches, while "评价格外" ("评价" / "格外") does not. The tokenizer is built once and passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import jieba

# High enough that a keyword always wins the segmentation against jieba's own dictionary words.
_KEYWORD_FREQ = 2_000_000


class IntentSpec(Protocol):
    name: str
    keywords: tuple[str, ...]
    priority: int


@dataclass(frozen=True, slots=True)
class IntentMatch:
    name: str
    keywords: tuple[str, ...]  # the keywords found, longest first

    @property
    def specificity(self) -> int:
        return sum(len(k) for k in self.keywords)


def build_tokenizer(keywords: Iterable[str], base: jieba.Tokenizer | None = None) -> jieba.Tokenizer:
    """A jieba tokenizer with its dictionary loaded and every keyword added (about a second: start-up only).

    ``base``: an initialised tokenizer whose dictionary is copied instead of loaded from disk again.
    """
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    if base is not None and base.initialized:
        tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(base.FREQ), base.total, True
    else:
        tokenizer.initialize()
    for keyword in {normalize(k) for k in keywords}:
        tokenizer.add_word(keyword, freq=_KEYWORD_FREQ)
    return tokenizer


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


class IntentMatcher:
    """Picks the intent of a message. Ties: higher priority, then more specific (longer keywords matched),
    then more keywords matched, then the order of configuration."""

    def __init__(self, intents: Iterable[IntentSpec], tokenizer: jieba.Tokenizer,
                 extra_keywords: Iterable[str] = ()) -> None:
        """``extra_keywords``: other words later checked with ``matches_any`` (the consent words)."""
        self._tokenizer = tokenizer
        self._order: dict[str, tuple[int, int]] = {}
        self._by_keyword: dict[str, list[str]] = {}
        for index, intent in enumerate(intents):
            self._order[intent.name] = (intent.priority, -index)
            for keyword in {normalize(k) for k in intent.keywords}:
                self._by_keyword.setdefault(keyword, []).append(intent.name)
        self._by_first: dict[str, tuple[str, ...]] = {}
        for keyword in {*self._by_keyword, *(normalize(k) for k in extra_keywords)}:
            if keyword:
                self._by_first[keyword[0]] = (*self._by_first.get(keyword[0], ()), keyword)

    def _mentions_a_keyword(self, normalized: str) -> bool:
        by_first = self._by_first
        return any(normalized.startswith(k, i) for i, ch in enumerate(normalized) if ch in by_first
                   for k in by_first[ch])

    def tokens(self, text: str) -> frozenset[str]:
        """The message's words, cut once and shared by every check on it. HMM off: discovering new words
        costs time and cannot find a keyword, which is always in the dictionary."""
        normalized = normalize(text)
        if not self._mentions_a_keyword(normalized):
            # A keyword can only be one of the words if it is in the text at all: no need to cut.
            return frozenset([normalized])
        # The whole message too: one that is exactly a keyword ("TD") matches even if jieba cuts it apart.
        return frozenset([*self._tokenizer.lcut_for_search(normalized, HMM=False), normalized])

    def match(self, text: str, tokens: frozenset[str] | None = None) -> IntentMatch | None:
        found: dict[str, list[str]] = {}
        for token in self.tokens(text) if tokens is None else tokens:
            for name in self._by_keyword.get(token, ()):
                found.setdefault(name, []).append(token)
        if not found:
            return None
        best = max(found, key=lambda name: (self._order[name][0], sum(map(len, found[name])), len(found[name]),
                                            self._order[name][1]))
        return IntentMatch(best, tuple(sorted(found[best], key=lambda k: (-len(k), k))))


def matches_any(matcher: IntentMatcher, text: str, keywords: Iterable[str],
                tokens: frozenset[str] | None = None) -> bool:
    """Whether a message says one of these keywords (consent words such as 退订 / TD); the matcher must
    know them (intents' keywords or its ``extra_keywords``).

    Latin keywords must be the whole message ("TD", not "TD是什么"); Chinese ones may stand in a sentence.
    """
    normalized = normalize(text)
    wanted = {normalize(k) for k in keywords}
    if normalized in wanted:
        return True
    chinese = {k for k in wanted if not k.isascii()}
    return bool(chinese) and bool((matcher.tokens(text) if tokens is None else tokens) & chinese)
