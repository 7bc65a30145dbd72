"""The routing rules and the smooth weighted round robin (leads/routing.py): pure, property-tested."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config.handoff import RoutingRule, build_routing
from leads.routing import LeadFacts, Member, day_start, matching_rules, pick, ranked, rule_matches, tie_hash

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def facts(**kw: object) -> LeadFacts:
    return LeadFacts(1, **kw)  # type: ignore[arg-type]


def test_a_rule_matches_when_every_key_it_names_accepts_the_lead() -> None:
    rule = RoutingRule("east", {"region": ("上海", "浙江"), "industry": ("manufacturing",)})
    assert rule_matches(rule, facts(region="浙江", industry="manufacturing"))
    assert not rule_matches(rule, facts(region="浙江", industry="retail"))
    assert not rule_matches(rule, facts(region="北京", industry="manufacturing"))
    assert not rule_matches(rule, facts(industry="manufacturing"))  # no region: a rule naming one does not match
    assert rule_matches(RoutingRule("any"), facts())  # a rule without conditions catches every lead


def test_scores_are_inclusive_and_a_lead_without_a_score_matches_no_bounded_rule() -> None:
    rule = RoutingRule("hot", min_score=60, max_score=80)
    assert rule_matches(rule, facts(motivation=60)) and rule_matches(rule, facts(motivation=80))
    assert not rule_matches(rule, facts(motivation=59.9)) and not rule_matches(rule, facts(motivation=80.1))
    assert not rule_matches(rule, facts())
    assert rule_matches(RoutingRule("low", max_score=10), facts(motivation=3))


def test_facts_read_the_profile_the_first_channel_and_the_score_copies() -> None:
    profile = {"region": " 上海 ", "industry": "it", "company_size": "", "product_interest": "薪酬核算", "x": 1}
    f = LeadFacts.of(7, profile, channel="wecom", quadrant="sales_ready", motivation=71.5)
    assert (f.region, f.industry, f.company_size, f.product_line) == ("上海", "it", None, "薪酬核算")
    assert (f.channel, f.quadrant, f.motivation) == ("wecom", "sales_ready", 71.5)
    assert LeadFacts.of(7, {"product_line": "hr", "product_interest": "x"}, channel=None, quadrant=None,
                        motivation=None).product_line == "hr"
    assert LeadFacts.of(7, None, channel=None, quadrant=None, motivation=None) == LeadFacts(7)


def test_rules_are_tried_in_order_and_named_by_their_name_or_their_place() -> None:
    routing = build_routing({"rules": [
        {"team": "east", "region": "上海", "channel": ["wecom", "oa"]},
        {"team": "hot", "quadrant": "sales_ready", "min_score": 70, "name": "高意向"},
        {"team": "rest"},
    ]})
    both = facts(region="上海", channel="OA", quadrant="sales_ready", motivation=90)  # case-insensitive
    assert [m.label for m in matching_rules(routing.rules, both)] == ["routing.rules[0]", "高意向", "routing.rules[2]"]
    assert [m.rule.team for m in matching_rules(routing.rules, facts(quadrant="sales_ready", motivation=1))] == [
        "rest"]


def run(members: list[Member], n: int, *, fresh_days: bool = False) -> tuple[Counter[int], list[Member]]:
    """``fresh_days``: every pick on a new day (the caps' counts start again), so only the shares decide."""
    got: Counter[int] = Counter()
    for i in range(n):
        step = pick(members, i, at=AT + timedelta(seconds=i))
        assert step is not None
        chosen, after = step
        got[chosen.user_id] += 1
        members = [replace(m, today=0, month=0) for m in after] if fresh_days else list(after)
    return got, members


weights = st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(weights, st.lists(st.integers(min_value=0, max_value=30), min_size=8, max_size=8))
def test_over_a_thousand_assignments_each_member_gets_its_weight_share(ws: list[int], caps: list[int]) -> None:
    members = [Member(100 + i, weight=w, capacity=caps[i]) for i, w in enumerate(ws)]
    got, after = run(members, 1000, fresh_days=True)
    total = sum(m.share for m in members)
    for m in members:
        expected = 1000 * m.share / total
        assert abs(got[m.user_id] - expected) <= max(0.05 * expected, 1), (m, got)
    # The round robin's balance: weight x virtual time is each member's count, so the team's sum is every MQL
    # (nobody fell a round behind, so nobody was lifted).
    assert abs(sum(m.share * m.virtual_time for m in after) - 1000) < 1e-6


def test_the_weight_defaults_to_the_capacity_then_to_one() -> None:
    assert [Member(1, weight=3, capacity=9).share, Member(1, capacity=9).share, Member(1).share] == [3, 9, 1]


def test_the_smooth_round_robin_interleaves_rather_than_bursts() -> None:
    got, _ = run([Member(1, weight=5), Member(2, weight=1), Member(3, weight=1)], 7)
    assert got == Counter({1: 5, 2: 1, 3: 1})
    order = []
    members = [Member(1, weight=5), Member(2, weight=1), Member(3, weight=1)]
    for i in range(7):
        step = pick(members, i, at=AT)
        assert step is not None
        order.append(step[0].user_id)
        members = list(step[1])
    assert order.count(1) == 5 and "1, 1, 1" not in ", ".join(map(str, order))  # never three in a row


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3), st.integers(0, 3), st.integers(0, 5),
                          st.integers(0, 5)), min_size=1, max_size=6), st.integers(1, 10**9))
def test_away_disabled_excluded_and_capped_members_are_never_chosen(
        rows: list[tuple[bool, bool, int, int, int, int]], lead_id: int) -> None:
    members = [Member(10 + i, away=away, disabled=off, capacity=cap, monthly_cap=mcap, today=today, month=month)
               for i, (away, off, cap, mcap, today, month) in enumerate(rows)]
    excluded = frozenset({10})
    step = pick(members, lead_id, at=AT, excluded=excluded)
    ok = [m for m in members if not (m.away or m.disabled or m.user_id in excluded)
          and (m.capacity == 0 or m.today < m.capacity) and (m.monthly_cap == 0 or m.month < m.monthly_cap)]
    if not ok:
        assert step is None
        return
    assert step is not None and step[0].user_id in {m.user_id for m in ok}
    untouched = {m.user_id: m for m in members if m not in ok}
    assert all(untouched[m.user_id] == m for m in step[1] if m.user_id in untouched)  # their state stays


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40))
def test_caps_hold_over_many_assignments(capacity: int, n: int) -> None:
    members = [Member(1, capacity=capacity), Member(2, monthly_cap=capacity), Member(3)]
    for i in range(n):
        step = pick(members, i, at=AT)
        assert step is not None  # member 3 has no cap
        members = list(step[1])
    by_id = {m.user_id: m for m in members}
    assert by_id[1].today <= capacity and by_id[2].month <= capacity


def test_ties_go_to_the_longest_waiting_then_to_the_hash_never_to_the_id() -> None:
    earlier, later = AT - timedelta(hours=2), AT - timedelta(hours=1)
    step = pick([Member(1, last_assigned_at=later), Member(2, last_assigned_at=earlier)], 5, at=AT)
    assert step is not None and step[0].user_id == 2
    step = pick([Member(1, last_assigned_at=earlier), Member(2)], 5, at=AT)  # never assigned waits longest
    assert step is not None and step[0].user_id == 2
    winners = set()
    for lead_id in range(50):  # equal everything: the (lead, member) hash decides, so both win some
        step = pick([Member(1), Member(2)], lead_id, at=AT)
        assert step is not None
        winners.add(step[0].user_id)
        expected = min((1, 2), key=lambda u: tie_hash(lead_id, u))
        assert step[0].user_id == expected
    assert winners == {1, 2}
    assert tie_hash(3, 4) == tie_hash(3, 4) != tie_hash(4, 3)


def test_the_day_starts_at_midnight_china_time() -> None:
    late_utc = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 01:00 on 3 March in Beijing
    assert day_start(late_utc) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert day_start(datetime(2026, 3, 2, 15, 59, tzinfo=UTC)) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_a_member_back_from_away_catches_up_by_two_rounds_not_in_a_burst() -> None:
    members = [Member(1), Member(2), Member(3, weight=2, away=True)]
    got, after = run(members, 300)
    assert got[3] == 0 and got[1] == got[2] == 150
    back = [replace(m, away=False) for m in after]
    got, after = run(back, 40)
    # Fair share of 40 at weights 1:1:2 is 20; two rounds behind count at most 4 more, never all 40.
    assert 20 <= got[3] <= 25, got
    got, _ = run(after, 400)
    assert abs(got[3] - 200) <= 2 and abs(got[1] - 100) <= 2, got  # then plain shares again


def test_ranked_lists_the_eligible_in_winning_order() -> None:
    members = [Member(1, virtual_time=2.0), Member(2, virtual_time=1.0), Member(3, away=True),
               Member(4, virtual_time=1.5)]
    order = [m.user_id for m in ranked(members, 7)]
    assert order == [2, 4, 1]
    step = pick(members, 7, at=AT)
    assert step is not None and step[0].user_id == order[0]
    assert step[0].virtual_time == 2.0 and step[0].last_assigned_at == AT  # grew by 1/weight
