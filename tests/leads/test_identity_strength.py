"""Strong and weak identities in resolution (leads/identity.py): a typed phone or email never picks, moves or
merges another person's lead; it leads to a duplicate suggestion instead."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.identity import (
    EMAIL,
    MP_OPENID,
    OA_OPENID,
    PHONE,
    UNIONID,
    WECOM_EXTERNAL,
    Conflict,
    IdentityKey,
    Merge,
    Suggestion,
    holds_strongly,
    plan_merge,
    plan_resolution,
)
from tests.leads.test_identity_plan import lead

OPENID = IdentityKey(OA_OPENID, "wxapp", "o_attacker")
MP = IdentityKey(MP_OPENID, "wxmp", "mp_attacker")
TYPED = IdentityKey(PHONE, "", "13800000001")
VERIFIED = IdentityKey(PHONE, "", "13800000001", verified=True)
MAIL = IdentityKey(EMAIL, "", "victim@corp.cn")


def test_strength_of_each_kind():
    assert all(IdentityKey(k, "", "x").strong for k in (OA_OPENID, UNIONID, MP_OPENID, WECOM_EXTERNAL))
    assert VERIFIED.strong
    assert not TYPED.strong and not MAIL.strong


def test_an_anonymous_visitor_typing_a_known_phone_gets_a_new_lead_and_a_suggestion():
    victim = lead(1, 30)
    plan = plan_resolution([TYPED, MAIL], {TYPED.ref: victim, MAIL.ref: victim})
    assert plan.target_id is None and plan.attach == () and plan.merges == () and plan.verify == ()
    assert plan.suggestions == (Suggestion(1, TYPED), Suggestion(1, MAIL))


def test_a_known_wechat_user_typing_someone_elses_phone_stays_on_their_own_lead():
    attacker, victim = lead(5, 1), lead(1, 30)
    plan = plan_resolution([OPENID, TYPED, MAIL], {OPENID.ref: attacker, TYPED.ref: victim})
    assert plan.target_id == 5 and plan.merges == () and plan.conflicts == ()
    assert plan.attach == (MAIL,)  # the unclaimed email is theirs to give
    assert plan.suggestions == (Suggestion(1, TYPED),)


def test_typing_a_verified_phone_of_another_lead_is_still_only_a_suggestion():
    victim = lead(1, 30, (TYPED.value,))
    plan = plan_resolution([MP, TYPED], {MP.ref: lead(5, 1), TYPED.ref: victim})
    assert plan.target_id == 5 and plan.merges == () and plan.verify == ()
    assert plan.suggestions == (Suggestion(1, TYPED),)


def test_a_verified_phone_typed_earlier_by_the_same_lead_becomes_verified():
    own = lead(5, 1)
    plan = plan_resolution([MP, VERIFIED], {MP.ref: own, VERIFIED.ref: own})
    assert plan.target_id == 5 and plan.verify == (VERIFIED,) and plan.suggestions == () and plan.attach == ()


def test_a_verified_phone_another_lead_only_typed_moves_to_the_verifier_without_a_merge():
    typer = lead(1, 30)  # typed the number (perhaps someone else's) in a form
    assert not holds_strongly(VERIFIED, typer)
    plan = plan_resolution([MP, VERIFIED], {MP.ref: lead(5, 1), VERIFIED.ref: typer})
    assert plan.target_id == 5 and plan.merges == () and plan.conflicts == ()
    assert plan.verify == (VERIFIED,) and plan.suggestions == (Suggestion(1, VERIFIED),)


def test_a_verified_phone_another_lead_verified_too_merges_as_before():
    holder = lead(1, 30, (VERIFIED.value,))
    plan = plan_resolution([MP, VERIFIED], {MP.ref: lead(5, 1), VERIFIED.ref: holder})
    assert [(m.survivor_id, m.merged_id, m.via) for m in plan.merges] == [(1, 5, MP)]
    assert plan.target_id == 1 and plan.suggestions == () and plan.verify == ()


def test_a_weak_identity_held_by_a_lead_merged_in_this_event_needs_no_suggestion():
    older, newer = lead(1, 30), lead(2, 10)
    union = IdentityKey(UNIONID, "", "u1")
    plan = plan_resolution([OPENID, union, TYPED], {OPENID.ref: newer, union.ref: older, TYPED.ref: newer})
    assert [m.merged_id for m in plan.merges] == [2] and plan.target_id == 1 and plan.suggestions == ()


def test_in_a_conflict_a_weak_identity_of_a_merged_lead_points_at_its_survivor():
    oldest, merged = lead(1, 30, ("13900000009",)), lead(2, 20)
    sender = lead(3, 10, ("13700000007",))
    union, external = IdentityKey(UNIONID, "", "u1"), IdentityKey(WECOM_EXTERNAL, "corp", "wm1")
    plan = plan_resolution([OPENID, union, external, MAIL],
                           {OPENID.ref: sender, union.ref: oldest, external.ref: merged, MAIL.ref: merged})
    assert plan.target_id == 3 and [m.merged_id for m in plan.merges] == [2]
    assert plan.suggestions == (Suggestion(1, MAIL),)


def test_plan_merge_keeps_the_older_and_refuses_clashing_verified_phones():
    older, newer = lead(4, 10), lead(9, 1, ("13800000001",))
    assert plan_merge(newer, older, TYPED) == Merge(4, 9, TYPED)
    clash = plan_merge(lead(9, 1, ("13800000001",)), lead(4, 10, ("13900000002",)), TYPED)
    assert isinstance(clash, Conflict) and (clash.lead_id, clash.other_lead_id) == (4, 9)
    assert isinstance(plan_merge(lead(9, 1, ("1",)), lead(4, 10, ("1", "2")), TYPED), Merge)


# Property: whatever leads hold whatever identities, weak evidence never selects, merges or moves.
PHONES = ("13800000001", "13800000002", "13800000003")
IDENTITIES = st.one_of(
    st.builds(IdentityKey, st.sampled_from((OA_OPENID, UNIONID, MP_OPENID, WECOM_EXTERNAL)), st.just("app"),
              st.sampled_from(("a", "b", "c"))),
    st.builds(IdentityKey, st.just(PHONE), st.just(""), st.sampled_from(PHONES), st.booleans()),
    st.builds(IdentityKey, st.just(EMAIL), st.just(""), st.sampled_from(("x@a.cn", "y@b.cn"))),
)
LEADS = st.lists(st.builds(lambda i, age, phones: lead(i, age, tuple(phones)), st.integers(1, 6),
                           st.integers(0, 5), st.sets(st.sampled_from(PHONES), max_size=2)),
                 min_size=0, max_size=4, unique_by=lambda k: k.id)


@st.composite
def situations(draw):
    observed = draw(st.lists(IDENTITIES, min_size=1, max_size=5, unique_by=lambda i: i.ref))
    known = draw(LEADS)
    owners = {}
    if known:
        for ident in observed:
            if draw(st.booleans()):
                owners[ident.ref] = draw(st.sampled_from(known))
    return observed, owners


@settings(max_examples=400, deadline=None)
@given(situations())
def test_weak_identities_never_retarget_merge_or_move(situation):
    observed, owners = situation
    plan = plan_resolution(observed, owners)
    strong_leads = {owners[i.ref].id for i in observed if i.ref in owners and holds_strongly(i, owners[i.ref])}
    # Only a lead proven by a strong identity is the target or takes part in a merge or conflict.
    assert plan.target_id is None or plan.target_id in strong_leads
    involved = {m.survivor_id for m in plan.merges} | {m.merged_id for m in plan.merges}
    involved |= {c.lead_id for c in plan.conflicts} | {c.other_lead_id for c in plan.conflicts}
    assert involved <= strong_leads
    assert all(m.via.strong for m in plan.merges) and all(c.via.strong for c in plan.conflicts)
    # Nothing weak moves between leads: only new identities attach, only WeChat-verified numbers move.
    assert all(i.ref not in owners for i in plan.attach)
    assert all(i.kind == PHONE and i.verified for i in plan.verify)
    # Every weak identity another lead holds is a suggestion, and never against the target itself.
    for ident in observed:
        owner = owners.get(ident.ref)
        if owner is not None and not ident.strong and owner.id not in strong_leads:
            assert Suggestion(owner.id, ident) in plan.suggestions
    assert all(s.other_lead_id != plan.target_id for s in plan.suggestions)
    assert all(not holds_strongly(s.via, owners[s.via.ref]) for s in plan.suggestions)


@settings(max_examples=300, deadline=None)
@given(situations())
def test_without_strong_evidence_the_event_gets_a_new_lead(situation):
    observed, owners = situation
    weak = [i for i in observed if not i.strong]
    plan = plan_resolution(weak or [TYPED], {r: o for r, o in owners.items() if r in {i.ref for i in weak}})
    assert plan.target_id is None and plan.merges == () and plan.conflicts == () and plan.verify == ()
