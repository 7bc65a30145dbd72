"""leads/handoff.py: return reasons, the webhook body and its signature (against a vector computed here)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from leads.handoff import (
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    RETURN_TEXT_MAX,
    SIGNATURE_HEADER,
    AcceptedLead,
    DecisionRefused,
    already_accepted,
    check_return,
    idempotency_key,
    not_pending,
    signature,
    verify_signature,
    webhook_body,
    webhook_headers,
)

REASONS = ("预算不足", "非决策人", "需求不匹配", "联系不上", "重复")
SECRET = "whsec_test_0123456789abcdef"


def test_a_configured_reason_and_trimmed_text_pass() -> None:
    assert check_return(" 预算不足 ", "  明年再说\n预算已冻结 ", REASONS) == ("预算不足", "明年再说\n预算已冻结")
    assert check_return("重复", "", REASONS) == ("重复", "")


@pytest.mark.parametrize("reason", ["", "太贵", "预算", None, 3])
def test_a_reason_outside_the_list_is_400(reason: object) -> None:
    with pytest.raises(DecisionRefused) as refused:
        check_return(reason, "", REASONS)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (400, "bad_reason")
    assert "预算不足" in refused.value.message  # names the choices, in Chinese


def test_the_text_is_at_most_500_characters_without_control_characters() -> None:
    assert check_return("重复", "字" * RETURN_TEXT_MAX, REASONS)[1] == "字" * RETURN_TEXT_MAX
    with pytest.raises(DecisionRefused) as too_long:
        check_return("重复", "字" * (RETURN_TEXT_MAX + 1), REASONS)
    assert (too_long.value.status, too_long.value.code) == (400, "bad_text")
    assert "500" in too_long.value.message
    for bad in ("a\x00b", "a\x1bb", "a\u202eb", "a\rb"):
        with pytest.raises(DecisionRefused) as control:
            check_return("重复", bad, REASONS)
        assert control.value.message == "补充说明不能包含控制字符"


def test_refusals_say_what_happened_in_chinese() -> None:
    assert (already_accepted().status, already_accepted().message) == (409, "已接受")
    assert not_pending("returned").message == "这条线索已被退回，无需处理"
    assert not_pending(None).status == 409


def _accepted() -> AcceptedLead:
    at = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    return AcceptedLead(
        lead={"id": 7, "display_name": "王小明", "stage": "sal", "created_at": at, "profile": {"company": "华东机械"}},
        identities=[{"kind": "phone", "app": "", "value": "13812345678", "verified": True}],
        score={"ability": 72.5, "motivation": 40.0, "quadrant": "sales_ready"},
        bant={"budget": "yes"},
        touchpoints=[{"kind": "form_submit", "channel": "expo", "scene": "event", "source_code": "expo2026",
                      "occurred_at": at}],
        stages=[{"from": "lead", "to": "mql", "actor": "sdr", "reason": "BANT", "at": at}],
        salesperson={"id": 3, "username": "zhang", "display_name": "张三", "wecom_userid": "ZhangSan"},
        assignment={"id": 11, "rule": "routing.rules[0]", "reason": "", "team_id": 1, "assigned_at": at,
                    "accepted_at": at, "accepted_by_user_id": 3})


def test_the_body_is_compact_utf8_json_with_the_whole_history() -> None:
    body = webhook_body(_accepted(), event_id=idempotency_key(11))
    assert "王小明" in body and "\\u" not in body  # Chinese as is
    doc = json.loads(body)
    assert doc["event"] == "lead.accepted" and doc["id"] == "lead-accepted-11"
    assert doc["lead"]["identities"][0]["value"] == "13812345678"
    assert doc["lead"]["score"]["quadrant"] == "sales_ready"
    assert doc["lead"]["touchpoints"][0]["source_code"] == "expo2026"
    assert doc["lead"]["stage_history"][0]["to"] == "mql"
    assert doc["salesperson"]["display_name"] == "张三" and doc["assignment"]["id"] == 11
    assert doc["assignment"]["accepted_at"] == "2026-03-02T01:30:00+00:00"
    assert webhook_body(_accepted(), event_id="lead-accepted-11") == body  # stable: retries send the same bytes


def test_signature_matches_a_vector_computed_by_hand() -> None:
    # The README's example: secret, timestamp and body as a receiver sees them.
    body = '{"event":"lead.accepted","id":"lead-accepted-1"}'
    expected = hmac.new(SECRET.encode(), b"1767225600." + body.encode(), hashlib.sha256).hexdigest()
    assert signature(SECRET, 1767225600, body) == f"t=1767225600,v1={expected}"
    # The same vector, published in the README for receivers to check their code against.
    assert expected == "cafa80ac600278f43ed34dc518e55bdb531b3fadc07709de8e874f86c5fc37c3"


def test_headers_carry_signature_key_and_event() -> None:
    body = webhook_body(_accepted(), event_id="lead-accepted-11")
    headers = webhook_headers(SECRET, body, key="lead-accepted-11", timestamp=1767225600)
    assert headers[IDEMPOTENCY_HEADER] == "lead-accepted-11"
    assert headers[EVENT_HEADER] == "lead.accepted"
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=1767225600 + 60)
    assert not verify_signature(SECRET, headers[SIGNATURE_HEADER], body + " ", now=1767225600)
    assert not verify_signature("another-secret-0123456789", headers[SIGNATURE_HEADER], body, now=1767225600)
    assert not verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=1767225600 + 301)  # a replay
    assert not verify_signature(SECRET, "t=x,v1=00", body, now=0)
