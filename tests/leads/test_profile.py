"""leads/profile.py: which fields a person may edit, what is refused, how an update applies, and what the audit
log may keep of it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.profile import (
    DISPLAY_NAME,
    FIELDS,
    PROFILE_SPECS,
    Change,
    ProfileError,
    apply,
    audit_view,
    changes,
    current,
    label_of,
    parse_update,
)

CHOICE_FIELDS = [n for n, s in PROFILE_SPECS.items() if s.choices]
values = st.one_of(st.none(), st.text(max_size=60))


def test_the_editable_fields_exclude_identities_and_include_the_scored_ones():
    assert "phone" not in FIELDS and "email" not in FIELDS and "bant" not in FIELDS
    assert {"display_name", "company", "job_title", "company_size", "industry", "city", "website"} <= set(FIELDS)


def test_values_are_trimmed_and_empty_means_clear():
    assert parse_update({"company": "  杭州某某网络 ", "city": "", "name": None}) == {
        "company": "杭州某某网络", "city": None, "name": None}


@pytest.mark.parametrize(("raw", "field"), [
    ({}, ""), ({"phone": "13700001111"}, "phone"), ({"bant": "x"}, "bant"), ({"company": 1}, "company"),
    ({"company": "a\nb"}, "company"), ({"company": "x" * 101}, "company"),
    ({"display_name": "x" * 201}, "display_name"),
    ({"industry": "互联网"}, "industry"), ({"company_size": "huge"}, "company_size"),
    ({"website": "javascript:alert(1)"}, "website"), ({"website": "ftp://x.example"}, "website"),
    ({"city": "杭\u202e州"}, "city"), ({"name": "a\u0000"}, "name"),
])
def test_bad_updates_name_the_field(raw, field):
    with pytest.raises(ProfileError) as refused:
        parse_update(raw)
    assert refused.value.field == field and str(refused.value)


def test_choice_codes_and_urls_are_accepted():
    update = parse_update({"industry": "internet", "company_size": "500_999", "website": "https://example.com/a?b=1"})
    assert update["industry"] == "internet" and update["website"] == "https://example.com/a?b=1"


@given(st.dictionaries(st.sampled_from(list(PROFILE_SPECS)), values, min_size=1))
def test_an_accepted_update_is_what_the_profile_holds_afterwards(raw):
    try:
        update = parse_update(raw)
    except ProfileError:
        return
    before = {"bant": {"need": "x"}, "oa_following": True, "company": "旧公司"}
    after = apply(before, update)
    assert after["bant"] == {"need": "x"} and after["oa_following"] is True  # other keys untouched
    shown = current(None, after)
    for name, value in update.items():
        assert shown[name] == value
        if value is not None:
            assert value == value.strip() and 0 < len(value) <= PROFILE_SPECS[name].max_len
    assert before == {"bant": {"need": "x"}, "oa_following": True, "company": "旧公司"}  # not mutated


@given(st.dictionaries(st.sampled_from(FIELDS), st.one_of(st.none(), st.sampled_from(["a", "b"]))),
       st.dictionaries(st.sampled_from(FIELDS), st.one_of(st.none(), st.sampled_from(["a", "b"])), min_size=1))
def test_changes_are_exactly_the_fields_that_differ(before, update):
    found = changes(before, update)
    assert {c.field for c in found} == {n for n in update if before.get(n) != update[n]}
    assert all(c.before == before.get(c.field) and c.after == update[c.field] for c in found)


def test_the_audit_keeps_what_changed_from_what_to_what():
    found = [Change("industry", None, "internet"), Change("company", "甲公司", "乙公司"),
             Change(DISPLAY_NAME, "王芳", None)]
    before, after = audit_view(found)
    assert before == {"industry": None, "company": "甲公司", DISPLAY_NAME: "王芳"}
    assert after == {"industry": "internet", "company": "乙公司", DISPLAY_NAME: None}
    assert label_of("industry", "internet") == "互联网 / 软件" and label_of("company", None) == "—"
    assert label_of("company", "乙公司") == "乙公司"


@pytest.mark.parametrize("name", CHOICE_FIELDS)
def test_every_choice_code_is_accepted(name):
    for code, _ in PROFILE_SPECS[name].choices:
        assert parse_update({name: code}) == {name: code}
