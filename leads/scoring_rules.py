"""Scoring rules as data: what earns ability (fit) and motivation (behaviour) points, how points fade,
and what each quadrant does. Built from the ``[scoring]`` config section (bot/config/scoring.py). Pure.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
QUADRANTS = ("sales_ready", "nurture", "other_solution", "public_pool")
QUADRANT_LABELS = {
    "sales_ready": "高能力·高意向（转销售）",
    "nurture": "高能力·低意向（培育）",
    "other_solution": "低能力·高意向（推荐其他方案）",
    "public_pool": "低能力·低意向（公海）",
}


@dataclass(frozen=True, slots=True)
class AbilityRule:
    """Points for a profile attribute. Of the rules naming one attribute, the first that matches counts."""

    id: str
    attribute: str
    points: int
    values: tuple[str, ...] = ()  # matches when the attribute (as text, case-insensitive) is one of these
    min: float | None = None  # or when it is a number within [min, max]
    max: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(v.strip().lower() for v in self.values))

    def matches(self, value: Any) -> bool:
        if value is None or value == "":
            return False
        if self.values and str(value).strip().lower() in self.values:
            return True
        if self.min is None and self.max is None:
            return False
        number = _number(value)
        if number is None:
            return False
        return (self.min is None or number >= self.min) and (self.max is None or number <= self.max)


@dataclass(frozen=True, slots=True)
class MotivationRule:
    """Points for a touchpoint kind, optionally narrowed by its channel, scene or detail.

    Every matching rule counts (each with its own caps): make specific and general rules exclusive with
    filters (``content_key = true`` / ``false``) rather than relying on order.
    """

    id: str
    event: str
    points: int
    channel: tuple[str, ...] = ()
    scene: tuple[str, ...] = ()
    content_id: tuple[str, ...] = ()
    content_stage: tuple[str, ...] = ()
    content_key: bool | None = None
    tag: tuple[str, ...] = ()  # content tags carried in the touchpoint detail
    max_per_lead: int | None = None  # how many times it may count for one lead, ever
    max_per_day: int | None = None  # ... per calendar day (in scoring.timezone)
    once_per: str = ""  # a detail key ("content_id"): each distinct value counts once
    min_occurrences: int = 1  # counts from the n-th matching event on ("visited several pages")


@dataclass(frozen=True, slots=True)
class Decay:
    """How motivation points fade: exponential half-life, or a step schedule of (age in days, factor).

    ``grace_days``: points keep their full value that long before fading starts (ages in ``factor`` count
    from the end of the grace); leads/scoring.py also holds a lead that reaches the motivation threshold.
    """

    half_life_days: float = 0.0  # 0 and no steps: no decay
    steps: tuple[tuple[float, float], ...] = ()  # ascending ages; factor applies from that age on
    grace_days: float = 0.0

    def factor(self, age_seconds: float) -> float:
        if age_seconds <= 0:
            return 1.0
        if self.steps:
            days = age_seconds / 86_400
            current = 1.0
            for from_day, value in self.steps:
                if days >= from_day:
                    current = value
                else:
                    break
            return current
        if self.half_life_days > 0:
            return 0.5 ** (age_seconds / (self.half_life_days * 86_400))
        return 1.0


@dataclass(frozen=True, slots=True)
class ScoringRules:
    ability: tuple[AbilityRule, ...] = ()
    motivation: tuple[MotivationRule, ...] = ()
    decay: Decay = field(default_factory=Decay)
    ability_threshold: float = 25.0  # "high" ability: at least this
    motivation_threshold: float = 50.0
    timezone: str = "Asia/Shanghai"  # where a "day" (max_per_day) begins and ends
    # Quadrant -> actions run when a lead enters it: "stage:<stage>", "tag:<tag>", "journey:<id>".
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that affects a score changes: stored states from other rules are rebuilt."""
        blob = json.dumps(_canonical(asdict(self)), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def quadrant(self, ability: float, motivation: float) -> str:
        high_a = ability >= self.ability_threshold
        high_m = motivation >= self.motivation_threshold
        if high_a:
            return "sales_ready" if high_m else "nurture"
        return "other_solution" if high_m else "public_pool"


def _canonical(value: Any) -> Any:
    """Numbers as floats: rules equal as values (min=500 and min=500.0) get the same fingerprint."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return [_canonical(v) for v in value]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().replace(",", "")
    # Not float(): it reads "500_999" (a company-size code) as 500999.
    return float(text) if _NUMBER.fullmatch(text) else None
