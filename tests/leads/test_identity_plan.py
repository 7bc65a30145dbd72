"""The pure identity-resolution rules (leads/identity.py), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leads.identity import (
    OA_OPENID,
    PHONE,
    UNIONID,
    WECOM_EXTERNAL,
    IdentityKey,
    KnownLead,
    plan_resolution,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPENID = IdentityKey(OA_OPENID, "wxapp", "o1")
UNION = IdentityKey(UNIONID, "", "u1")
EXTERNAL = IdentityKey(WECOM_EXTERNAL, "corp", "wm1")


def lead(id_: int, age_days: int, phones: tuple[str, ...] = ()) -> KnownLead:
    return KnownLead(id_, T0 - timedelta(days=age_days), frozenset(phones))


def test_unknown_identities_create_a_lead_with_all_of_them():
    plan = plan_resolution([OPENID, UNION], {})
    assert plan.target_id is None and plan.attach == (OPENID, UNION) and not plan.merges


def test_known_identity_attaches_the_new_ones_to_its_lead():
    plan = plan_resolution([OPENID, UNION], {OPENID.ref: lead(7, 3)})
    assert plan.target_id == 7 and plan.attach == (UNION,) and not plan.merges


def test_two_leads_linked_by_an_event_merge_into_the_older():
    newer, older = lead(9, 1), lead(4, 10)
    plan = plan_resolution([EXTERNAL, UNION], {EXTERNAL.ref: newer, UNION.ref: older})
    assert plan.target_id == 4
    assert [(m.survivor_id, m.merged_id, m.via) for m in plan.merges] == [(4, 9, EXTERNAL)]
    assert plan.attach == () and plan.conflicts == ()


def test_same_age_breaks_ties_by_id():
    a, b = KnownLead(5, T0), KnownLead(3, T0)
    plan = plan_resolution([OPENID, UNION], {OPENID.ref: a, UNION.ref: b})
    assert plan.target_id == 3 and plan.merges[0].merged_id == 5


def test_conflicting_verified_phones_never_merge():
    sender, other = lead(9, 1, ("13800000001",)), lead(4, 10, ("13900000002",))
    plan = plan_resolution([EXTERNAL, UNION], {EXTERNAL.ref: sender, UNION.ref: other})
    assert plan.merges == ()
    (conflict,) = plan.conflicts
    assert (conflict.lead_id, conflict.other_lead_id, conflict.via) == (4, 9, EXTERNAL)
    assert plan.target_id == 9  # the touch stays with the sender's own lead


def test_shared_verified_phone_is_no_conflict():
    a, b = lead(9, 1, ("13800000001",)), lead(4, 10, ("13800000001", "13900000002"))
    plan = plan_resolution([EXTERNAL, UNION], {EXTERNAL.ref: a, UNION.ref: b})
    assert [m.merged_id for m in plan.merges] == [9] and plan.conflicts == ()


def test_one_side_without_verified_phone_merges():
    a, b = lead(9, 1), lead(4, 10, ("13900000002",))
    plan = plan_resolution([EXTERNAL, UNION], {EXTERNAL.ref: a, UNION.ref: b})
    assert [m.merged_id for m in plan.merges] == [9]


def test_three_leads_merge_only_the_compatible_ones():
    oldest = lead(1, 30, ("13800000001",))
    compatible, clashing = lead(2, 20), lead(3, 10, ("13900000002",))
    phone = IdentityKey(PHONE, "", "13700000000", verified=True)
    plan = plan_resolution([OPENID, UNION, EXTERNAL, phone],
                           {OPENID.ref: clashing, UNION.ref: oldest, EXTERNAL.ref: compatible})
    assert [m.merged_id for m in plan.merges] == [2]
    assert [(c.lead_id, c.other_lead_id) for c in plan.conflicts] == [(1, 3)]
    assert plan.target_id == 3 and plan.attach == (phone,)


def test_phones_gathered_by_earlier_merges_count_for_later_conflicts():
    oldest = lead(1, 30)
    with_phone, clashing = lead(2, 20, ("13800000001",)), lead(3, 10, ("13900000002",))
    plan = plan_resolution([OPENID, UNION, EXTERNAL],
                           {OPENID.ref: oldest, UNION.ref: with_phone, EXTERNAL.ref: clashing})
    assert [m.merged_id for m in plan.merges] == [2]
    assert [c.other_lead_id for c in plan.conflicts] == [3]
    assert plan.target_id == 1


def test_an_event_needs_an_identity():
    with pytest.raises(ValueError):
        plan_resolution([], {})
