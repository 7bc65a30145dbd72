"""leads/handoff_reply.py: which channel answers a hand-off question, and the OA 48-hour window's boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from leads.handoff_reply import (
    NO_CHANNEL,
    NO_MEMBER,
    NO_TEMPLATE,
    OA,
    OA_TEMPLATE,
    OA_TEXT,
    OUTSIDE_WINDOW,
    WECOM,
    WECOM_TASK,
    Plan,
    Reach,
    channel_of,
    hours_left,
    plan_reply,
    service_window,
    template_payload,
)

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
OA_ONLY = Reach(openid="o-1", oa_last_interaction_at=NOW - timedelta(hours=1))
WECOM_ONLY = Reach(external_userid="wm-1", wecom_owner="sales_chen")


def test_the_window_is_open_up_to_exactly_48_hours() -> None:
    last = NOW - timedelta(hours=48)
    assert service_window(last, NOW, 48).open and service_window(last, NOW, 48).closes_at == NOW
    assert not service_window(last - timedelta(microseconds=1), NOW, 48).open
    assert service_window(None, NOW, 48).open is False and service_window(None, NOW, 48).closes_at is None


def test_plans() -> None:
    assert plan_reply(OA_ONLY, "auto", NOW, 48, "") == Plan(OA, OA_TEXT)
    late = Reach(openid="o-1", oa_last_interaction_at=NOW - timedelta(hours=49))
    assert plan_reply(late, "auto", NOW, 48, "TPL") == Plan(OA, refusal=OUTSIDE_WINDOW)
    assert plan_reply(late, "template", NOW, 48, "TPL") == Plan(OA, OA_TEMPLATE)
    assert plan_reply(late, "template", NOW, 48, "") == Plan(OA, refusal=NO_TEMPLATE)
    assert plan_reply(Reach(openid="o-1"), "auto", NOW, 48, "") == Plan(OA, refusal=OUTSIDE_WINDOW)
    assert plan_reply(WECOM_ONLY, "auto", NOW, 48, "") == Plan(WECOM, WECOM_TASK)
    assert plan_reply(WECOM_ONLY, "template", NOW, 48, "TPL") == Plan(WECOM, WECOM_TASK)
    assert plan_reply(Reach(external_userid="wm-1"), "auto", NOW, 48, "") == Plan(WECOM, refusal=NO_MEMBER)
    assert plan_reply(Reach(), "auto", NOW, 48, "TPL") == Plan(None, refusal=NO_CHANNEL)


def test_oa_answers_first_when_both_reach_the_person() -> None:
    both = Reach(openid="o-1", external_userid="wm-1", wecom_owner="sales_chen")
    assert channel_of(both) == OA


def test_hours_left_rounds_up() -> None:
    assert hours_left(service_window(NOW - timedelta(hours=47, minutes=50), NOW, 48), NOW) == 1
    assert hours_left(service_window(NOW - timedelta(hours=6), NOW, 48), NOW) == 42
    assert hours_left(service_window(NOW - timedelta(hours=60), NOW, 48), NOW) == 0


def test_the_template_payload_matches_the_outbox_fallback_shape() -> None:
    payload = template_payload("o-1", "您好" * 20, "TPL", "https://example.com/x")
    assert payload["openid"] == "o-1" and payload["template_id"] == "TPL" and payload["url"] == "https://example.com/x"
    assert payload["data"]["first"]["value"] == "您好" * 20 and len(payload["data"]["keyword1"]["value"]) == 20
    assert "url" not in template_payload("o-1", "hi", "TPL")


@given(age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)), window_h=st.integers(1, 48),
       mode=st.sampled_from(["auto", "template"]), template=st.sampled_from(["", "TPL"]))
def test_a_customer_service_text_is_planned_exactly_when_the_window_is_open(age, window_h, mode, template) -> None:
    reach = Reach(openid="o-1", oa_last_interaction_at=NOW - age)
    plan = plan_reply(reach, mode, NOW, window_h, template)
    inside = age <= timedelta(hours=window_h)
    assert (plan.kind == OA_TEXT) == (inside and mode == "auto")
    assert (plan.kind is None) == (plan.refusal is not None)  # either a way to send or a reason not to
    assert plan.kind != OA_TEMPLATE or template  # never a template without a configured one
    window = service_window(reach.oa_last_interaction_at, NOW, window_h)
    assert window.open == inside and (hours_left(window, NOW) > 0) == inside
