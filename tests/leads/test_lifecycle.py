"""The lead lifecycle (leads/lifecycle.py): the transition table, who may move a lead, quadrant entry actions and
consent."""

from __future__ import annotations

from itertools import product

import pytest

from leads.lifecycle import (
    ACTORS,
    CUSTOMER,
    DISQUALIFIED,
    LEAD,
    MERGED,
    MQL,
    OPPORTUNITY,
    RECYCLED,
    RETURNED,
    SAL,
    SALES,
    SDR,
    SQL,
    STAGE_LABELS,
    STAGES,
    SYSTEM,
    TRANSITIONS,
    UNSUBSCRIBED,
    QuadrantEffects,
    Transition,
    TransitionRefused,
    allowed,
    consent_transition,
    quadrant_effects,
    stages_intent_can_move,
    transition,
)
from leads.scoring_rules import QUADRANTS

ALL = list(product(STAGES, STAGES, ACTORS))


def in_table(from_stage: str, to_stage: str, actor: str) -> bool:
    return actor in TRANSITIONS.get(from_stage, {}).get(to_stage, frozenset())


def refused(from_stage: str, to_stage: str, actor: str, reason: str = "why") -> TransitionRefused:
    with pytest.raises(TransitionRefused) as info:
        transition(from_stage, to_stage, actor, reason)
    err = info.value
    assert (err.from_stage, err.to_stage, err.actor) == (from_stage, to_stage, actor)
    assert str(err)  # a message for the console
    return err


# -- the table -------------------------------------------------------------------------------------------
def test_table_names_only_known_stages_and_actors() -> None:
    assert set(TRANSITIONS) == set(STAGES)
    assert set(STAGE_LABELS) == set(STAGES)
    for from_stage, moves in TRANSITIONS.items():
        assert set(moves) <= set(STAGES), from_stage
        assert from_stage not in moves, f"{from_stage} -> itself"
        for to_stage, who in moves.items():
            assert who and who <= set(ACTORS), (from_stage, to_stage)


def test_every_combination_not_in_the_table_is_refused() -> None:
    wrong = []
    for from_stage, to_stage, actor in ALL:
        if in_table(from_stage, to_stage, actor):
            continue
        if allowed(from_stage, to_stage, actor):
            wrong.append((from_stage, to_stage, actor, "allowed() says yes"))
        try:
            transition(from_stage, to_stage, actor, "a reason", "u1")
        except TransitionRefused as err:
            if (err.from_stage, err.to_stage, err.actor) != (from_stage, to_stage, actor) or not str(err):
                wrong.append((from_stage, to_stage, actor, f"refusal names the wrong move: {err!r}"))
        else:
            wrong.append((from_stage, to_stage, actor, "transition() accepted it"))
    assert not wrong, "refused moves let through:\n" + "\n".join(map(str, wrong))


def test_every_combination_in_the_table_is_allowed() -> None:
    wrong = []
    count = 0
    for from_stage, to_stage, actor in ALL:
        if not in_table(from_stage, to_stage, actor):
            continue
        count += 1
        if not allowed(from_stage, to_stage, actor):
            wrong.append((from_stage, to_stage, actor, "allowed() says no"))
        try:
            result = transition(from_stage, to_stage, actor, "  a reason ", "u1")
        except TransitionRefused as err:
            wrong.append((from_stage, to_stage, actor, f"refused: {err}"))
            continue
        if result != Transition(from_stage, to_stage, actor, "a reason", "u1"):
            wrong.append((from_stage, to_stage, actor, f"wrong result: {result!r}"))
    assert not wrong, "allowed moves refused:\n" + "\n".join(map(str, wrong))
    assert count == sum(len(who) for moves in TRANSITIONS.values() for who in moves.values())


def test_same_stage_is_refused_with_its_own_message() -> None:
    for stage in STAGES:
        assert "已处于" in str(refused(stage, stage, SALES))


def test_actor_not_allowed_names_who_is() -> None:
    err = refused(MQL, SAL, SDR)
    assert "sales" in str(err) and "sdr" not in str(err)


def test_move_not_in_table_message() -> None:
    assert "不允许" in str(refused(LEAD, CUSTOMER, SALES))


@pytest.mark.parametrize("actor", ["", "admin", "SALES", "Sales", "robot", " sdr"])
def test_unknown_actor_refused(actor: str) -> None:
    assert not allowed(LEAD, MQL, actor)
    assert "未知的操作人" in str(refused(LEAD, MQL, actor))


@pytest.mark.parametrize(("from_stage", "to_stage"), [
    (LEAD, "won"), (LEAD, ""), (LEAD, "MQL"), (LEAD, MERGED), ("won", MQL), ("", MQL), ("MQL", SAL),
])
def test_unknown_stage_refused(from_stage: str, to_stage: str) -> None:
    for actor in ACTORS:
        assert not allowed(from_stage, to_stage, actor)
        refused(from_stage, to_stage, actor)


@pytest.mark.parametrize("reason", ["", " ", "\n\t "])
def test_empty_reason_refused(reason: str) -> None:
    assert "原因" in str(refused(LEAD, MQL, SYSTEM, reason))


def test_reason_is_stripped_and_actor_id_kept() -> None:
    assert transition(MQL, SAL, SALES, " 客户预算明确\n", "zhangsan") == Transition(MQL, SAL, SALES, "客户预算明确",
                                                                                   "zhangsan")
    assert transition(LEAD, MQL, SYSTEM, "score").actor_id == ""


@pytest.mark.parametrize("to_stage", [*STAGES, MERGED])
@pytest.mark.parametrize("actor", ACTORS)
def test_merged_leads_never_move(to_stage: str, actor: str) -> None:
    assert not allowed(MERGED, to_stage, actor)
    refused(MERGED, to_stage, actor)


def test_nothing_moves_into_merged() -> None:
    for stage, actor in product(STAGES, ACTORS):
        assert not allowed(stage, MERGED, actor)
        refused(stage, MERGED, actor)


# -- the lead's life (DOMAIN.md) --------------------------------------------------------------------------
def test_domain_path_lead_to_customer() -> None:
    path = [(LEAD, MQL, SYSTEM), (MQL, SAL, SALES), (SAL, SQL, SALES), (SQL, OPPORTUNITY, SALES),
            (OPPORTUNITY, CUSTOMER, SALES)]
    for from_stage, to_stage, actor in path:
        t = transition(from_stage, to_stage, actor, "next step")
        assert (t.from_stage, t.to_stage, t.actor) == (from_stage, to_stage, actor)


def test_domain_path_actors() -> None:
    assert allowed(LEAD, MQL, SDR)  # an SDR qualifies by hand too
    # Only sales accepts (SAL) or returns an MQL.
    assert [a for a in ACTORS if allowed(MQL, SAL, a)] == [SALES]
    assert [a for a in ACTORS if allowed(MQL, RETURNED, a)] == [SALES]
    # Past acceptance, people decide: the system (a score) never moves the lead along the funnel.
    for from_stage, to_stage in [(SAL, SQL), (SQL, OPPORTUNITY), (OPPORTUNITY, CUSTOMER)]:
        assert allowed(from_stage, to_stage, SDR) and allowed(from_stage, to_stage, SALES)
        refused(from_stage, to_stage, SYSTEM)
    # No skipping stages.
    for from_stage, to_stage in [(LEAD, SAL), (LEAD, SQL), (MQL, SQL), (SAL, OPPORTUNITY), (SQL, CUSTOMER)]:
        for actor in ACTORS:
            refused(from_stage, to_stage, actor)


@pytest.mark.parametrize("stage", [RETURNED, RECYCLED])
@pytest.mark.parametrize("actor", ACTORS)
def test_returned_and_recycled_can_become_mql_again(stage: str, actor: str) -> None:
    assert transition(stage, MQL, actor, "renewed intent").to_stage == MQL


def test_returned_by_sales_with_reason_then_back_to_mql() -> None:
    back = transition(SAL, RETURNED, SALES, "预算不足", "li")
    assert (back.to_stage, back.reason, back.actor_id) == (RETURNED, "预算不足", "li")
    assert transition(back.to_stage, MQL, SYSTEM, "score").to_stage == MQL
    refused(SAL, RETURNED, SDR)


def test_side_states() -> None:
    for stage in STAGES:
        if stage != UNSUBSCRIBED:
            assert allowed(stage, UNSUBSCRIBED, SYSTEM), stage  # anyone may opt out, from anywhere
        if stage not in (CUSTOMER, UNSUBSCRIBED, DISQUALIFIED):
            assert allowed(stage, DISQUALIFIED, SDR) and not allowed(stage, DISQUALIFIED, SYSTEM), stage
    assert list(TRANSITIONS[UNSUBSCRIBED]) == [LEAD]
    assert list(TRANSITIONS[CUSTOMER]) == [UNSUBSCRIBED]


# -- quadrant entry actions -------------------------------------------------------------------------------
ACTIONS: dict[str, tuple[str, ...]] = {
    "sales_ready": ("stage:mql", "tag:hot", "journey:handoff"),
    "nurture": ("tag:nurture", "tag:warm", "journey:nurture_drip"),
    "other_solution": ("tag:other_solution",),
    "public_pool": ("tag:public_pool", "stage:recycled", "tag:warm"),
}


@pytest.mark.parametrize("quadrant", QUADRANTS)
def test_no_effect_when_the_quadrant_is_unchanged(quadrant: str) -> None:
    assert quadrant_effects(quadrant, quadrant, LEAD, ACTIONS) == QuadrantEffects()


def test_entering_sales_ready_from_lead_makes_an_mql() -> None:
    fx = quadrant_effects("nurture", "sales_ready", LEAD, ACTIONS)
    assert fx.transition is not None
    assert (fx.transition.from_stage, fx.transition.to_stage, fx.transition.actor) == (LEAD, MQL, SYSTEM)
    assert fx.transition.reason and fx.transition.actor_id == "quadrant:sales_ready"
    assert fx.add_tags == ("hot",)
    assert set(fx.remove_tags) == {"nurture", "warm"}
    assert fx.journeys == ("handoff",)
    # The transition it proposes is one the lifecycle accepts.
    assert transition(LEAD, MQL, SYSTEM, fx.transition.reason, fx.transition.actor_id) == fx.transition


@pytest.mark.parametrize("stage", [RETURNED, RECYCLED])
def test_entering_sales_ready_from_returned_or_recycled_makes_an_mql(stage: str) -> None:
    fx = quadrant_effects("public_pool", "sales_ready", stage, ACTIONS)
    assert fx.transition is not None and fx.transition.to_stage == MQL


@pytest.mark.parametrize("stage", [MQL, SAL, SQL, OPPORTUNITY, CUSTOMER, DISQUALIFIED, UNSUBSCRIBED, MERGED])
def test_entering_sales_ready_never_overrides_people(stage: str) -> None:
    fx = quadrant_effects("nurture", "sales_ready", stage, ACTIONS)
    assert fx.transition is None
    assert fx.add_tags == ("hot",) and fx.journeys == ("handoff",)  # the rest still happens


def test_leaving_a_quadrant_removes_its_tags_and_adds_the_new_ones() -> None:
    fx = quadrant_effects("sales_ready", "nurture", SAL, ACTIONS)
    assert fx.add_tags == ("nurture", "warm")
    assert fx.remove_tags == ("hot",)
    assert fx.journeys == ("nurture_drip",)
    assert fx.transition is None  # nurture has no stage action; a stage change is history, it stays


def test_a_tag_both_quadrants_set_is_not_removed() -> None:
    fx = quadrant_effects("nurture", "public_pool", LEAD, ACTIONS)
    assert fx.add_tags == ("public_pool", "warm")
    assert fx.remove_tags == ("nurture",)
    assert fx.transition is not None and fx.transition.to_stage == RECYCLED
    # An MQL is recycled by people only.
    assert quadrant_effects("nurture", "public_pool", MQL, ACTIONS).transition is None


def test_first_quadrant_removes_nothing() -> None:
    fx = quadrant_effects(None, "nurture", LEAD, ACTIONS)
    assert fx == QuadrantEffects(None, ("nurture", "warm"), (), ("nurture_drip",))


def test_quadrants_without_actions() -> None:
    assert quadrant_effects("nurture", "sales_ready", LEAD, {}) == QuadrantEffects()
    assert quadrant_effects("sales_ready", "nurture", LEAD, {"sales_ready": ("tag:hot",)}) == QuadrantEffects(
        remove_tags=("hot",))


def test_stage_action_to_an_unknown_or_current_stage_is_skipped() -> None:
    assert quadrant_effects("nurture", "sales_ready", LEAD, {"sales_ready": ("stage:won",)}).transition is None
    assert quadrant_effects("nurture", "sales_ready", MQL, {"sales_ready": ("stage:mql",)}).transition is None


# -- consent ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", [s for s in STAGES if s != UNSUBSCRIBED])
def test_consent_revoked_unsubscribes_from_any_stage(stage: str) -> None:
    t = consent_transition("consent_revoked", stage)
    assert t is not None
    assert (t.from_stage, t.to_stage, t.actor, t.actor_id) == (stage, UNSUBSCRIBED, SYSTEM, "consent")
    assert t.reason
    assert transition(stage, UNSUBSCRIBED, SYSTEM, t.reason, t.actor_id) == t


def test_consent_revoked_when_already_unsubscribed_does_nothing() -> None:
    assert consent_transition("consent_revoked", UNSUBSCRIBED) is None


def test_consent_granted_brings_an_unsubscribed_person_back_as_a_lead() -> None:
    t = consent_transition("consent_granted", UNSUBSCRIBED)
    assert t is not None
    assert (t.from_stage, t.to_stage, t.actor, t.actor_id) == (UNSUBSCRIBED, LEAD, SYSTEM, "consent")
    assert transition(UNSUBSCRIBED, LEAD, SYSTEM, t.reason, t.actor_id) == t


@pytest.mark.parametrize("stage", [s for s in STAGES if s != UNSUBSCRIBED])
def test_consent_granted_otherwise_changes_nothing(stage: str) -> None:
    assert consent_transition("consent_granted", stage) is None  # an MQL opting in stays an MQL


@pytest.mark.parametrize("stage", [*STAGES, MERGED])
def test_other_touchpoints_and_merged_leads(stage: str) -> None:
    assert consent_transition("email_open", stage) is None
    assert consent_transition("unsubscribe", stage) is None
    assert consent_transition("consent_revoked", MERGED) is None
    assert consent_transition("consent_granted", MERGED) is None


def test_more_intent_can_move_the_stages_the_quadrant_stage_actions_allow() -> None:
    defaults = {"sales_ready": ("stage:mql",), "nurture": ("tag:nurture",), "other_solution": ("tag:x",)}
    assert stages_intent_can_move(defaults) == {True: frozenset({LEAD, RETURNED, RECYCLED}), False: frozenset()}
    recycle = {**defaults, "other_solution": ("tag:x", "stage:recycled")}
    # The system recycles only new and returned leads; an MQL, an opportunity or a disqualified lead only people.
    assert stages_intent_can_move(recycle)[False] == frozenset({LEAD, RETURNED})
    assert stages_intent_can_move({"sales_ready": ()}) == {True: frozenset(), False: frozenset()}
