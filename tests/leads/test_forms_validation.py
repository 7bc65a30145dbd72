"""leads/forms.py: field rules, Chinese messages, normalisation and progressive profiling (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config.capture import FORM_FIELDS, FormDef
from leads.form_fields import COMPANY_SIZES, COMPANY_TYPES, FIELD_SPECS
from leads.forms import (
    MSG_CONSENT,
    MSG_CONTACT,
    MSG_EMAIL,
    MSG_PHONE,
    clean_param,
    consent_record,
    fields_to_ask,
    known_fields,
    normalise_email,
    normalise_phone,
    privacy_version,
    utm_params,
    validate_field,
    validate_submission,
)

DEMO = FormDef(id="demo", title="预约演示", fields=("name", "phone", "email", "company", "job_title", "department",
                                                  "company_size", "company_type", "industry", "region",
                                                  "product_interest"),
               required=("name", "phone", "company"))
ALL = DEMO.fields


def check(raw: dict, *, form: FormDef = DEMO, consent: bool = True, identified: bool = False,
          ask: tuple[str, ...] | None = None):
    return validate_submission(form, raw, ask=ask if ask is not None else form.fields, consent=consent,
                               identified=identified)


def test_the_catalogue_covers_every_configurable_field():
    assert set(FIELD_SPECS) == set(FORM_FIELDS)


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "+86-138-0013-8000", "0086 13800138000",
                                 "8613800138000", " 138-0013-8000 ", "１３８００１３８０００", "(+86) 13800138000"])
def test_mainland_mobile_numbers_are_normalised_to_11_digits(raw):
    assert normalise_phone(raw) == "13800138000"


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "138001380001", "23800138000", "+1 4155552671",
                                 "phone", "", "13800l38000", "+87 13800138000", "١٣٨٠٠١٣٨٠٠٠"])
def test_other_numbers_are_refused(raw):
    assert normalise_phone(raw) is None


@pytest.mark.parametrize("raw, expected", [("Li.Na@Example.COM", "li.na@example.com"),
                                           (" sales+cn@corp.com.cn ", "sales+cn@corp.com.cn"),
                                           ("ｓａｌｅｓ＠ｃｏｒｐ．ｃｎ", "sales@corp.cn")])
def test_emails_are_normalised(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["no-at-sign", "a@b", "a@@b.cn", "a..b@corp.cn", "a@-corp.cn", "a b@corp.cn",
                                 "x" * 65 + "@corp.cn", "a@" + "b" * 250 + ".cn", "张三@公司.cn",
                                 "a@" + "b" * 64 + ".cn", "a\x00b@corp.cn",
                                 "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 58]) + ".com"])  # 255
def test_bad_emails_are_refused(raw):
    assert normalise_email(raw) is None


LONGEST_EMAIL = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 57]) + ".com"


def test_the_longest_valid_email_is_accepted():
    assert len(LONGEST_EMAIL) == 254 and normalise_email(LONGEST_EMAIL) == LONGEST_EMAIL


def test_messages_are_chinese_and_name_the_field():
    result = check({"name": "", "phone": "12345", "email": "bad", "company": "", "job_title": "ceo"})
    assert result.errors == {
        "name": "请填写姓名",
        "phone": MSG_PHONE,
        "email": MSG_EMAIL,
        "company": "请填写公司名称",
        "job_title": "请从列表中选择职级",
    }
    assert MSG_PHONE == "请输入正确的手机号码"
    assert result.values == {}  # nothing half-valid leaks out of a failed submission


def test_a_valid_submission_is_normalised_and_split_into_contact_and_profile():
    result = check({"name": " 张伟 ", "phone": "+86 139-1234-5678", "email": "ZW@Corp.cn", "company": "上海某某科技",
                    "job_title": "director", "department": "hr", "company_size": "500_999",
                    "company_type": "b2b", "industry": "manufacturing", "region": "上海",
                    "product_interest": "招聘管理", "unknown_field": "ignored"})
    assert result.ok
    assert result.contact == {"phone": "13912345678", "email": "zw@corp.cn"}
    assert result.profile == {"name": "张伟", "company": "上海某某科技", "job_title": "director", "department": "hr",
                              "company_size": "500_999", "company_type": "b2b", "industry": "manufacturing",
                              "region": "上海", "product_interest": "招聘管理"}


def test_choices_accept_the_chinese_label_and_store_the_code():
    assert validate_field(FIELD_SPECS["company_type"], "非营利组织") == ("nonprofit", None)
    assert validate_field(FIELD_SPECS["department"], "人力资源") == ("hr", None)
    assert validate_field(FIELD_SPECS["company_size"], "5000") == ("", "请从列表中选择公司规模")


def test_company_sizes_include_the_scored_bands_and_types_the_four_kinds():
    codes = [c for c, _ in COMPANY_SIZES]
    assert {"250_499", "500_999", "1000_50000"} <= set(codes)
    assert [label for _, label in COMPANY_TYPES][:2] == ["B2B（面向企业）", "B2C（面向消费者）"]
    assert any("非营利" in label for _, label in COMPANY_TYPES) and any(c == "other" for c, _ in COMPANY_TYPES)


def test_length_limits():
    assert validate_field(FIELD_SPECS["name"], "张" * 50) == ("张" * 50, None)
    assert validate_field(FIELD_SPECS["name"], "张" * 51) == ("", "姓名不能超过50个字")
    assert validate_field(FIELD_SPECS["company"], "x" * 101)[1] == "公司名称不能超过100个字"
    assert validate_field(FIELD_SPECS["product_interest"], "y" * 201)[1] == "感兴趣的产品 / 需求不能超过200个字"


def test_markup_is_kept_as_text_and_control_characters_dropped():
    payload = "<script>alert(1)</script>"
    assert validate_field(FIELD_SPECS["company"], payload) == (payload, None)
    assert validate_field(FIELD_SPECS["name"], "王\x00芳\x1b") == ("王芳", None)


def test_non_text_values_from_json_are_refused():
    result = check({"name": 42, "phone": "13800138000", "company": ["x"]})
    assert result.errors == {"name": "姓名格式不正确", "company": "公司名称格式不正确"}


def test_optional_fields_may_stay_empty_but_consent_may_not():
    result = check({"name": "李娜", "phone": "13800138000", "company": "某公司"}, consent=False)
    assert result.errors == {"consent": MSG_CONSENT}
    assert "隐私政策" in MSG_CONSENT
    assert check({"name": "李娜", "phone": "13800138000", "company": "某公司"}).ok


def test_an_anonymous_visitor_must_leave_phone_or_email():
    form = FormDef(id="f", title="t", fields=("name", "phone", "email"))
    assert check({"name": "李娜"}, form=form).errors == {"phone": MSG_CONTACT}
    assert check({"email": "ln@corp.cn"}, form=form).ok
    # A visitor known by a WeChat ID can be reached already.
    assert check({"name": "李娜"}, form=form, identified=True).ok


def test_fields_not_asked_are_neither_required_nor_taken():
    result = check({"name": "李娜", "phone": "bogus", "company": "某公司"}, ask=("name", "company"), identified=True)
    assert result.ok and result.values == {"name": "李娜", "company": "某公司"}


def test_progressive_profiling_skips_what_the_lead_gave():
    known = known_fields({"name": "张伟", "company": "", "region": None, "consent": {"state": "granted"}},
                         ["oa_openid", "phone"])
    assert known == {"name", "phone"}
    assert fields_to_ask(DEMO, known) == tuple(f for f in ALL if f not in ("name", "phone"))
    assert fields_to_ask(DEMO, known_fields({}, [])) == ALL
    assert fields_to_ask(DEMO, known_fields({}, ["email"])) == tuple(f for f in ALL if f != "email")


def test_consent_record_names_the_privacy_text_version():
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    record = consent_record("我已阅读并同意《隐私政策》", at, "demo", "h5")
    assert record == {"state": "granted", "at": "2026-03-01T09:30:00+00:00", "form": "demo", "via": "h5",
                      "privacy_version": privacy_version("我已阅读并同意《隐私政策》")}
    assert privacy_version("a") != privacy_version("b") and len(privacy_version("a")) == 16


def test_source_parameters_are_bounded_text():
    assert utm_params({"utm_source": " baidu ", "utm_medium": "", "utm_term": "x" * 500, "other": "y",
                       "utm_campaign": ["list"]}) == {"utm_source": "baidu", "utm_term": "x" * 200}
    assert clean_param("expo\x002026", 64) == "expo2026"
    assert clean_param(None) == ""
