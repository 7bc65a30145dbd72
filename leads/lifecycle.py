"""The lead lifecycle: stages, who may move a lead from one to another, and the quadrant entry actions. Pure."""

from __future__ import annotations

from dataclasses import dataclass

LEAD, MQL, SAL, SQL, OPPORTUNITY, CUSTOMER = "lead", "mql", "sal", "sql", "opportunity", "customer"
RETURNED, RECYCLED, DISQUALIFIED, UNSUBSCRIBED = "returned", "recycled", "disqualified", "unsubscribed"
STAGES = (LEAD, MQL, SAL, SQL, OPPORTUNITY, CUSTOMER, RETURNED, RECYCLED, DISQUALIFIED, UNSUBSCRIBED)
STAGE_LABELS = {
    LEAD: "线索", MQL: "市场认可线索（MQL）", SAL: "销售接受（SAL）", SQL: "销售认可（SQL）", OPPORTUNITY: "商机",
    CUSTOMER: "客户", RETURNED: "销售退回", RECYCLED: "公海 / 回收", DISQUALIFIED: "无效线索", UNSUBSCRIBED: "已退订",
}
MERGED = "merged"  # an absorbed lead: not a lifecycle stage, it has no transitions

SYSTEM, SDR, SALES = "system", "sdr", "sales"
ACTORS = (SYSTEM, SDR, SALES)
_ANYONE = frozenset(ACTORS)
_PEOPLE = frozenset({SDR, SALES})

# from -> to -> who may make that move. Everything else is refused.
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    LEAD: {MQL: _ANYONE, RECYCLED: _ANYONE, DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    MQL: {SAL: frozenset({SALES}), RETURNED: frozenset({SALES}), RECYCLED: _PEOPLE, DISQUALIFIED: _PEOPLE,
          UNSUBSCRIBED: _ANYONE},
    SAL: {SQL: _PEOPLE, RETURNED: frozenset({SALES}), DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    SQL: {OPPORTUNITY: _PEOPLE, RETURNED: frozenset({SALES}), DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    OPPORTUNITY: {CUSTOMER: _PEOPLE, RECYCLED: _PEOPLE, DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    CUSTOMER: {UNSUBSCRIBED: _ANYONE},
    # Returned and recycled leads go back to nurture and may become MQLs again on renewed intent.
    RETURNED: {MQL: _ANYONE, RECYCLED: _ANYONE, DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    RECYCLED: {MQL: _ANYONE, DISQUALIFIED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    DISQUALIFIED: {RECYCLED: _PEOPLE, UNSUBSCRIBED: _ANYONE},
    # Opting in again (订阅, a consent box) brings the person back as a lead.
    UNSUBSCRIBED: {LEAD: _ANYONE},
}


class TransitionRefused(ValueError):
    """A stage change the lifecycle does not allow; the message says why, in Chinese for the console."""

    def __init__(self, from_stage: str, to_stage: str, actor: str, message: str) -> None:
        super().__init__(message)
        self.from_stage, self.to_stage, self.actor = from_stage, to_stage, actor


@dataclass(frozen=True, slots=True)
class Transition:
    from_stage: str
    to_stage: str
    actor: str  # system | sdr | sales
    reason: str
    actor_id: str = ""  # the rule, the SDR's or salesperson's user id


def allowed(from_stage: str, to_stage: str, actor: str) -> bool:
    return actor in TRANSITIONS.get(from_stage, {}).get(to_stage, frozenset())


def transition(from_stage: str, to_stage: str, actor: str, reason: str, actor_id: str = "") -> Transition:
    """The transition, or TransitionRefused naming what is wrong."""
    if actor not in ACTORS:
        raise TransitionRefused(from_stage, to_stage, actor, f"未知的操作人类型：{actor}（可选 {', '.join(ACTORS)}）")
    if to_stage not in STAGES:
        raise TransitionRefused(from_stage, to_stage, actor, f"未知的阶段：{to_stage}")
    if from_stage not in TRANSITIONS:
        raise TransitionRefused(from_stage, to_stage, actor, f"线索当前状态（{from_stage}）不能变更阶段")
    if to_stage == from_stage:
        raise TransitionRefused(from_stage, to_stage, actor, f"线索已处于“{STAGE_LABELS[to_stage]}”阶段")
    who = TRANSITIONS[from_stage].get(to_stage)
    if who is None:
        raise TransitionRefused(from_stage, to_stage, actor,
                                f"不允许从“{STAGE_LABELS[from_stage]}”变更为“{STAGE_LABELS[to_stage]}”")
    if actor not in who:
        raise TransitionRefused(from_stage, to_stage, actor,
                                f"“{STAGE_LABELS[from_stage]}”→“{STAGE_LABELS[to_stage]}”只能由"
                                f"{'、'.join(sorted(who))}操作")
    if not reason.strip():
        raise TransitionRefused(from_stage, to_stage, actor, "请填写变更原因")
    return Transition(from_stage, to_stage, actor, reason.strip(), actor_id)


@dataclass(frozen=True, slots=True)
class QuadrantEffects:
    """What entering a quadrant does to a lead in a given stage."""

    transition: Transition | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    journeys: tuple[str, ...] = ()


def quadrant_effects(old: str | None, new: str, stage: str, actions: dict[str, tuple[str, ...]]) -> QuadrantEffects:
    """Entry actions of ``new`` (nothing if the quadrant did not change).

    Tags a quadrant sets describe being in it, so leaving the quadrant removes them; a stage change is
    history and stays. A stage action the lifecycle does not allow from the current stage (an MQL action for
    a lead sales already accepted) is skipped: the score never overrides what people decided.
    """
    if old == new:
        return QuadrantEffects()
    remove = tuple(a[4:] for a in actions.get(old or "", ()) if a.startswith("tag:"))
    add = tuple(a[4:] for a in actions.get(new, ()) if a.startswith("tag:"))
    journeys = tuple(a[8:] for a in actions.get(new, ()) if a.startswith("journey:"))
    move = None
    for action in actions.get(new, ()):
        if action.startswith("stage:") and allowed(stage, action[6:], SYSTEM):
            move = Transition(stage, action[6:], SYSTEM, f"评分进入象限 {new}", actor_id=f"quadrant:{new}")
    return QuadrantEffects(move, add, tuple(t for t in remove if t not in add), journeys)


def consent_transition(touchpoint_kind: str, stage: str) -> Transition | None:
    """An explicit opt-out (退订) makes the lead Unsubscribed; opting in again brings it back as a Lead."""
    if touchpoint_kind == "consent_revoked" and allowed(stage, UNSUBSCRIBED, SYSTEM):
        return Transition(stage, UNSUBSCRIBED, SYSTEM, "用户退订营销消息", actor_id="consent")
    if touchpoint_kind == "consent_granted" and allowed(stage, LEAD, SYSTEM) and stage == UNSUBSCRIBED:
        return Transition(stage, LEAD, SYSTEM, "用户重新订阅", actor_id="consent")
    return None


def stages_intent_can_move(actions: dict[str, tuple[str, ...]]) -> dict[bool, frozenset[str]]:
    """Per ability side (True: at or above the ability threshold), the stages a lead can leave on more intent.

    More motivation takes a lead from nurture into sales_ready (high ability), or from public_pool into
    other_solution (low ability); entering that quadrant runs its stage action when the lifecycle allows the
    move from the lead's stage. Used to pick out the events that may hand a lead to sales.
    """
    out: dict[bool, frozenset[str]] = {}
    for high, quadrant in ((True, "sales_ready"), (False, "other_solution")):
        targets = [a[6:] for a in actions.get(quadrant, ()) if a.startswith("stage:")]
        out[high] = frozenset(s for s in STAGES for t in targets if allowed(s, t, SYSTEM))
    return out
