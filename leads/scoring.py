"""The scoring model: ability from the profile, motivation from score events, decay, and the explanation.

Pure. The incremental path (one new touchpoint) and ``leadrelay scores recompute`` (every touchpoint) both
fold events through :meth:`ScoreModel.step`, in (occurred_at, touchpoint id) order, so they cannot disagree:
an event that arrives out of that order makes ``step`` return ``None`` and the caller replays the lead.

Decay starts after a grace period, and a lead reaching the motivation threshold is held for one
(leads/scoring_decay.py): scores don't flicker at the threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leads.scoring_decay import Holds, factors, hold, total
from leads.scoring_rules import MotivationRule, ScoringRules

ABILITY, MOTIVATION = "ability", "motivation"


@dataclass(frozen=True, slots=True)
class ScoreEvent:
    """A touchpoint as scoring sees it."""

    touchpoint_id: int
    kind: str
    occurred_at: datetime
    channel: str = ""
    scene: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def order(self) -> tuple[float, int]:
        return (self.occurred_at.timestamp(), self.touchpoint_id)


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule counting one event: the stored unit of motivation."""

    rule_id: str
    touchpoint_id: int
    at: float  # POSIX seconds of the event
    points: int


@dataclass(slots=True)
class MotivationState:
    """Everything needed to apply the next event without reading the history again."""

    last: tuple[float, int] | None = None
    matched: dict[str, int] = field(default_factory=dict)  # rule -> matching events so far
    counted: dict[str, int] = field(default_factory=dict)  # rule -> events that earned points
    day: str = ""  # the calendar day of the last event; max_per_day counts only ever need that day
    day_counts: dict[str, int] = field(default_factory=dict)
    once: dict[str, list[str]] = field(default_factory=dict)  # rule -> detail values already counted
    hits: list[Hit] = field(default_factory=list)
    holds: Holds = field(default_factory=list)  # when nothing of the lead fades (leads/scoring_decay.py)
    # What deciding a hold needs without summing every hit again (_judge_hold): the motivation after the last
    # event (kept up to date while the lead is held: nothing fades then), and an upper bound of it.
    value: float = 0.0
    bound: float = 0.0

    def copy(self) -> MotivationState:
        return MotivationState(self.last, dict(self.matched), dict(self.counted), self.day, dict(self.day_counts),
                               {k: list(v) for k, v in self.once.items()}, list(self.hits), list(self.holds),
                               self.value, self.bound)

    def to_json(self) -> dict[str, Any]:
        return {"last": list(self.last) if self.last else None, "matched": self.matched, "counted": self.counted,
                "day": self.day, "day_counts": self.day_counts, "once": self.once,
                "hits": [[h.rule_id, h.touchpoint_id, h.at, h.points] for h in self.hits],
                "holds": [list(h) for h in self.holds], "value": self.value, "bound": self.bound}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MotivationState:
        last = data.get("last")
        return cls(last=(float(last[0]), int(last[1])) if last else None, matched=dict(data.get("matched", {})),
                   counted=dict(data.get("counted", {})), day=data.get("day", ""),
                   day_counts=dict(data.get("day_counts", {})),
                   once={k: list(v) for k, v in data.get("once", {}).items()},
                   hits=[Hit(str(r), int(t), float(a), int(p)) for r, t, a, p in data.get("hits", [])],
                   holds=[(float(lo), float(hi)) for lo, hi in data.get("holds", [])],
                   value=float(data.get("value", 0.0)), bound=float(data.get("bound", 0.0)))


@dataclass(frozen=True, slots=True)
class Contribution:
    """One line of a score's explanation."""

    score: str  # "ability" | "motivation"
    rule_id: str
    points: int  # as the rule gave them
    current: float  # after decay, at the time of reading (ability never decays)
    attribute: str | None = None
    value: Any = None
    touchpoint_id: int | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Scorecard:
    ability: float
    motivation: float
    quadrant: str
    contributions: tuple[Contribution, ...]
    at: datetime


class ScoreModel:
    def __init__(self, rules: ScoringRules) -> None:
        self.rules = rules
        self.fingerprint = rules.fingerprint
        self._tz = ZoneInfo(rules.timezone)
        self._by_event: dict[str, list[MotivationRule]] = defaultdict(list)
        for rule in rules.motivation:
            self._by_event[rule.event].append(rule)
        self._daily = any(r.max_per_day for r in rules.motivation)
        # Whole microseconds, as a datetime holds them: a hold must end where the grace period's datetime does.
        self._grace_s = timedelta(days=rules.decay.grace_days).total_seconds()

    @property
    def scored_kinds(self) -> frozenset[str]:
        """Touchpoint kinds any motivation rule looks at: the only ones worth loading for a replay."""
        return frozenset(self._by_event)

    # -- motivation -------------------------------------------------------------------------------------
    def step(self, state: MotivationState, event: ScoreEvent) -> MotivationState | None:
        """Apply one event in place; ``None`` if it is older than the last one applied (replay instead).

        An event already applied (the same touchpoint, e.g. a retried callback) changes nothing.
        """
        rules = self._by_event.get(event.kind)
        if not rules:
            return state  # no rule looks at this kind: its order does not matter either
        order = event.order
        if state.last is not None:
            if order == state.last:
                return state
            if order < state.last:
                return None
        state.last = order
        day = self._day_of(event.occurred_at) if self._daily else ""
        if day != state.day:
            state.day, state.day_counts = day, {}
        points = gained = 0  # this event's points, and its positive ones
        for rule in rules:
            if not _passes(rule, event):
                continue
            rid = rule.id
            matched = state.matched[rid] = state.matched.get(rid, 0) + 1
            if matched < rule.min_occurrences:
                continue
            if rule.max_per_lead is not None and state.counted.get(rid, 0) >= rule.max_per_lead:
                continue
            if rule.max_per_day is not None and state.day_counts.get(rid, 0) >= rule.max_per_day:
                continue
            if rule.once_per:
                key = str(event.detail.get(rule.once_per, ""))
                seen = state.once.setdefault(rid, [])
                if key in seen:
                    continue
                seen.append(key)
            state.counted[rid] = state.counted.get(rid, 0) + 1
            state.day_counts[rid] = state.day_counts.get(rid, 0) + 1
            state.hits.append(Hit(rid, event.touchpoint_id, order[0], rule.points))
            points += rule.points
            gained += max(rule.points, 0)
        if gained or points:  # (the bound and the value change only with points)
            self._judge_hold(state, order[0], points, gained)
        return state

    def _judge_hold(self, state: MotivationState, at: float, points: int, gained: int) -> None:
        """Hold the lead if this event earned points and left it at or above the threshold.

        Inside a hold nothing faded since the last event: the value is the last one plus this event's points.
        Outside, it is summed afresh, unless an upper bound says it cannot reach the threshold: the last sum,
        plus every negative point (they fade: the value can rise by as much), plus the positive points since.
        """
        if not self._grace_s:
            return
        state.bound += gained
        held = bool(state.holds) and at <= state.holds[-1][1]
        if held and points:
            state.value = total((state.value, points))
        if not gained:
            return
        threshold = self.rules.motivation_threshold
        if not held:
            if state.bound < threshold:
                return
            state.value = self._value(state, at)
            state.bound = state.value - sum(h.points for h in state.hits if h.points < 0)
        if state.value >= threshold:
            hold(state.holds, at, at + self._grace_s)

    def replay(self, events: Iterable[ScoreEvent]) -> MotivationState:
        """The state after every event, each counted once, in (occurred_at, touchpoint id) order."""
        unique = {e.touchpoint_id: e for e in events}
        state = MotivationState()
        for event in sorted(unique.values(), key=lambda e: e.order):
            self.step(state, event)
        return state

    def motivation(self, state: MotivationState, at: datetime) -> float:
        return self._value(state, at.timestamp())

    def _value(self, state: MotivationState, now: float) -> float:
        return total(h.points * f for h, f in zip(state.hits, self._factors(state, now), strict=True))

    def _factors(self, state: MotivationState, now: float) -> list[float]:
        return factors(self.rules.decay.factor, self._grace_s, state.holds, [h.at for h in state.hits], now)

    # -- ability ----------------------------------------------------------------------------------------
    def ability_contributions(self, profile: Mapping[str, Any]) -> list[Contribution]:
        out: list[Contribution] = []
        done: set[str] = set()
        for rule in self.rules.ability:
            if rule.attribute in done:
                continue
            value = profile.get(rule.attribute)
            if rule.matches(value):
                done.add(rule.attribute)
                out.append(Contribution(ABILITY, rule.id, rule.points, float(rule.points), rule.attribute, value))
        return out

    def ability(self, profile: Mapping[str, Any]) -> float:
        return total(c.points for c in self.ability_contributions(profile))

    # -- both -------------------------------------------------------------------------------------------
    def standing(self, profile: Mapping[str, Any], state: MotivationState, at: datetime) -> tuple[float, float, str]:
        """Ability, motivation at ``at`` and the quadrant they put the lead in: what a lead's score row stores."""
        ability, motivation = self.ability(profile), self.motivation(state, at)
        return ability, motivation, self.rules.quadrant(ability, motivation)

    def scorecard(self, profile: Mapping[str, Any], state: MotivationState, at: datetime) -> Scorecard:
        """Totals and every contribution, exact at ``at``; each total is the sum of its contributions (rounded
        by leads/scoring_decay.py: total)."""
        lines = self.ability_contributions(profile)
        for h, f in zip(state.hits, self._factors(state, at.timestamp()), strict=True):
            lines.append(Contribution(MOTIVATION, h.rule_id, h.points, h.points * f, touchpoint_id=h.touchpoint_id,
                                      occurred_at=datetime.fromtimestamp(h.at, UTC)))
        ability = total(c.current for c in lines if c.score == ABILITY)
        motivation = total(c.current for c in lines if c.score == MOTIVATION)
        return Scorecard(ability, motivation, self.rules.quadrant(ability, motivation), tuple(lines), at)

    def _day_of(self, at: datetime) -> str:
        return at.astimezone(self._tz).date().isoformat()


def _passes(rule: MotivationRule, event: ScoreEvent) -> bool:
    if rule.channel and event.channel not in rule.channel:
        return False
    if rule.scene and event.scene not in rule.scene:
        return False
    detail = event.detail
    if rule.content_id and str(detail.get("content_id", "")) not in rule.content_id:
        return False
    if rule.content_stage and str(detail.get("stage", "")) not in rule.content_stage:
        return False
    if rule.content_key is not None and bool(detail.get("key", False)) != rule.content_key:
        return False
    if rule.tag:
        tags = detail.get("tags") or ()
        if not any(t in rule.tag for t in tags):
            return False
    return True
