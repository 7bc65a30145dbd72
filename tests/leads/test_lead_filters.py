"""The lead list's pure parts: what a search box entry means, LIKE escaping, Beijing days, phone masking and
CSV cells (Excel must never run a cell as a formula)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.lead_filters import (
    COUNT_CAP,
    EMAIL,
    MIN_INFIX,
    PHONE,
    PHONE_LAST4,
    TEXT,
    Search,
    classify_query,
    count_label,
    csv_cell,
    csv_rows,
    day_after,
    day_start,
    like_pattern,
    mask_phone,
)
from leads.lifecycle import STAGE_LABELS
from leads.scoring_rules import QUADRANT_LABELS


@pytest.mark.parametrize(("raw", "want"), [
    ("13812345678", Search(PHONE, "13812345678")),
    ("+8613812345678", Search(PHONE, "13812345678")),
    ("+86 138-1234-5678", Search(PHONE, "13812345678")),
    ("８６１３８１２３４５６７８", Search(PHONE, "13812345678")),  # full-width digits, as a Chinese IME types them
    (" 5678 ", Search(PHONE_LAST4, "5678")),
    ("LI.Na@Example.COM", Search(EMAIL, "li.na@example.com")),
    ("not-an@", Search(EMAIL, "not-an@")),  # still an email search (exact): never a fragment of one
    ("张伟", Search(TEXT, "张伟")),
    ("星河 科技", Search(TEXT, "星河 科技")),
    ("123", Search(TEXT, "123")),
    ("12345", Search(TEXT, "12345")),
    ("1381234567", Search(TEXT, "1381234567")),
    ("   ", None),
    ("", None),
])
def test_classify_query(raw, want):
    assert classify_query(raw) == want


@given(st.text(max_size=40))
def test_classification_is_total_and_normalised(raw):
    found = classify_query(raw)
    if found is None:
        assert not unicodedata.normalize("NFKC", raw).strip()
        return
    assert found.kind in (EMAIL, PHONE, PHONE_LAST4, TEXT) and found.value
    if found.kind == PHONE:
        assert re.fullmatch(r"[0-9]{11}", found.value)
    if found.kind == PHONE_LAST4:
        assert re.fullmatch(r"[0-9]{4}", found.value)
    if found.kind == EMAIL:
        assert "@" in found.value and found.value == found.value.lower()


@given(st.text(min_size=1, max_size=30))  # an empty search box is no search
def test_like_pattern_matches_exactly_the_fragment(fragment):
    """Read back as LIKE would: an escaped character is itself, % and _ are only the wrappers' (a leading one
    only from MIN_INFIX characters on: shorter fragments match from the start)."""
    pattern = like_pattern(fragment)
    infix = len(fragment) >= MIN_INFIX
    assert pattern.startswith("%") == infix and pattern.endswith("%")
    body, out, i = pattern[1 if infix else 0:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            out.append(body[i + 1])
            i += 2
        else:
            assert body[i] not in "%_"  # an unescaped wildcard inside would widen the search
            out.append(body[i])
            i += 1
    assert "".join(out) == fragment


def test_beijing_days():
    assert day_start(date(2026, 3, 1)) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert day_after(date(2026, 3, 1)) == datetime(2026, 3, 1, 16, tzinfo=UTC)


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"), ("+86 138 1234 5678", "138****5678"), ("1234567", "***"), ("", ""),
    (None, ""),
])
def test_mask_phone_examples(phone, masked):
    assert mask_phone(phone) == masked


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_a_masked_phone_never_shows_its_middle(phone):
    masked = mask_phone(phone)
    assert masked == phone[:3] + "****" + phone[-4:]
    assert phone not in masked and sum(ch.isdigit() for ch in masked) == 7


def test_count_label():
    assert count_label(12, False) == "12" and count_label(COUNT_CAP, True) == f"{COUNT_CAP}+"


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("张伟", "张伟"), ("a\x00b\x1bc", "abc"), ("多行\n备注", "多行\n备注"), (None, ""), (12, "12"),
    (-3.5, "-3.5"), (80.0, "80"), (datetime(2026, 3, 1, 4, 5, tzinfo=UTC), "2026-03-01 12:05"),
])
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


@given(st.text(max_size=40))
def test_no_csv_cell_starts_a_formula(text):
    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", cell)


@given(st.text(max_size=40))
def test_export_rows_defuse_text_as_csv_cell_does(text):
    [row] = csv_rows([(1, text, text, None, "mql", None, None, None, text, text, "granted", None, None)], {})
    assert row[1] == row[2] == row[8] == row[9] == csv_cell(text)


def test_export_rows_show_labels_masked_phones_and_beijing_minutes():
    at = datetime(2026, 3, 1, 4, 5, 59, tzinfo=UTC)
    memo: dict[datetime, str] = {}
    [row] = csv_rows([(7, "=王芳", "星河", "13812345678", "mql", "sales_ready", 80.0, 12.5, "陈静", "展会、VIP",
                       "revoked", at, at)], memo)
    assert row == ["7", "'=王芳", "星河", "138****5678", STAGE_LABELS["mql"], QUADRANT_LABELS["sales_ready"], "80",
                   "12.5", "陈静", "展会、VIP", "已退订", "2026-03-01 12:05", "2026-03-01 12:05"]
    assert memo == {at: "2026-03-01 12:05"}
