"""BANT fields: validation of an update, applying it, and which required fields are still missing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.bant import (
    AUTHORITIES,
    BUDGET_RANGES,
    FIELDS,
    TIMELINES,
    BantError,
    apply,
    label_of,
    missing,
    missing_message,
    parse_update,
    without_free_text,
)

COMPLETE = {"budget": "100k_500k", "authority": "decision_maker", "need": "招聘流程线上化", "timeline": "1_3_months"}


def test_a_complete_record_misses_nothing_and_an_empty_one_misses_every_required_field() -> None:
    assert missing(COMPLETE, FIELDS) == []
    assert missing({}, FIELDS) == list(FIELDS)
    assert missing({}, ["timeline", "budget"]) == ["budget", "timeline"]  # field order, not config order
    assert missing({}, []) == []


def test_unknown_does_not_qualify() -> None:
    assert missing({**COMPLETE, "authority": "unknown", "timeline": "unknown"}, FIELDS) == ["authority", "timeline"]
    assert missing({**COMPLETE, "budget": "unknown"}, ["need"]) == []


def test_budget_is_a_range_or_free_text() -> None:
    assert parse_update({"budget": "500k_1m"}) == {"budget": "500k_1m"}
    assert parse_update({"budget": "  约 80 万，分两期  "}) == {"budget": "约 80 万，分两期"}
    assert label_of("budget", "500k_1m") == "50万–100万元"
    assert label_of("budget", "约 80 万") == "约 80 万"
    with pytest.raises(BantError) as exc:
        parse_update({"budget": "万" * 201})
    assert exc.value.field == "budget" and "200" in str(exc.value)


@pytest.mark.parametrize(("raw", "field"), [
    ({"authority": "ceo"}, "authority"),
    ({"timeline": "soon"}, "timeline"),
    ({"need": "需" * 1001}, "need"),
    ({"need": "   "}, "need"),
    ({"need": 5}, "need"),
    ({"authority": ["user"]}, "authority"),
    ({"budgets": "1"}, "budgets"),
    ({}, ""),
])
def test_bad_updates_name_the_field(raw, field) -> None:
    with pytest.raises(BantError) as exc:
        parse_update(raw)
    assert exc.value.field == field
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(exc.value))


def test_null_clears_and_absent_fields_are_kept() -> None:
    update = parse_update({"need": None, "timeline": "over_6_months"})
    assert apply(COMPLETE, update) == {**{k: v for k, v in COMPLETE.items() if k != "need"},
                                       "timeline": "over_6_months"}
    assert apply({"stray": "x"}, {}) == {}


def test_every_choice_has_a_chinese_label() -> None:
    for choices in (BUDGET_RANGES, AUTHORITIES, TIMELINES):
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for _, label in choices)
    assert missing_message(["budget", "timeline"]) == "BANT 信息不完整，请先填写：预算、采购时间"


def test_the_audit_view_keeps_codes_and_drops_free_text() -> None:
    assert without_free_text({**COMPLETE, "budget": "王总说 80 万"}) == {
        "budget": "<free text>", "authority": "decision_maker", "need": "<free text>", "timeline": "1_3_months"}
    assert without_free_text(COMPLETE)["budget"] == "100k_500k"


values = st.one_of(st.none(), st.sampled_from([c for c, _ in AUTHORITIES + TIMELINES + BUDGET_RANGES]),
                   st.text(max_size=30))
records = st.dictionaries(st.sampled_from(FIELDS), values)


@given(records, st.sets(st.sampled_from(FIELDS)))
def test_missing_is_the_required_fields_not_filled(record, required) -> None:
    lacking = missing(record, required)
    assert set(lacking) <= required
    for name in required:
        value = record.get(name)
        assert (name in lacking) == (not isinstance(value, str) or value.strip() in ("", "unknown"))


@given(records, records)
def test_applying_a_valid_update_gives_exactly_its_values(current, raw) -> None:
    try:
        update = parse_update(raw)
    except BantError:
        return
    result = apply({k: v for k, v in current.items() if isinstance(v, str) and v}, update)
    assert list(result) == [f for f in FIELDS if f in result]
    for name, value in update.items():
        assert result.get(name) == value
    assert missing(result, update) == [n for n in FIELDS if n in update and (update[n] in (None, "unknown"))]
