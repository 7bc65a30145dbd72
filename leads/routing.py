"""Who gets an MQL: the first ``[[routing.rules]]`` entry the lead matches names a team, and inside the team a
smooth weighted round robin picks the member. Pure: storage/repos/routing.py reads the facts and counters,
locks, and writes what ``pick`` decides.

Matching. A rule matches when every key it names accepts the lead's value (any of the rule's values; equal
after trimming, case-insensitively) and the motivation score is within min_score..max_score (inclusive; a lead
without a score matches no rule that has a bound). ``product_line`` reads the profile's ``product_line``, else
its ``product_interest``; ``channel`` is the channel of the lead's first touchpoint.

Picking (nginx's smooth weighted round robin). Every eligible member's credit grows by its weight, the one with
the most credit wins and gives back the eligible members' total weight: over any run each member gets its
weight's share, spread out rather than in bursts. The weight is ``team_members.weight`` when above 0, else the
daily ``capacity`` when above 0 (a member who may take 20 a day gets twice the share of one who may take 10),
else 1. Credits persist between routings (team_members.credit), so the shares hold across processes and days.
Not eligible: away, disabled, excluded (the member being re-routed away from), at the daily cap (``capacity``
MQLs assigned today, China time) or at the 30-day cap (``monthly_cap``); 0 means no cap. Equal credit goes to
whoever has waited longest (never assigned first), then to a stable hash of (lead, member): never to the lower
id or the longer tenure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any, Protocol

CHINA = timezone(timedelta(hours=8))
MONTH_DAYS = 30
DEFAULT_OWNER_RULE = "routing.default_owner"
_PROFILE_KEYS = ("region", "industry", "company_size")


class Rule(Protocol):
    """bot.config.handoff.RoutingRule's shape (the domain does not import the configuration)."""

    team: str
    match: dict[str, tuple[str, ...]]
    min_score: float | None
    max_score: float | None
    name: str


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What rules match on, one lead."""

    lead_id: int
    region: str | None = None
    industry: str | None = None
    product_line: str | None = None
    company_size: str | None = None
    channel: str | None = None
    quadrant: str | None = None
    motivation: float | None = None

    @classmethod
    def of(cls, lead_id: int, profile: Mapping[str, Any] | None, *, channel: str | None, quadrant: str | None,
           motivation: float | None) -> LeadFacts:
        profile = profile or {}
        values = {key: _text(profile.get(key)) for key in _PROFILE_KEYS}
        product = _text(profile.get("product_line")) or _text(profile.get("product_interest"))
        return cls(lead_id, product_line=product, channel=_text(channel), quadrant=_text(quadrant),
                   motivation=motivation, **values)

    def value(self, key: str) -> str | None:
        value = getattr(self, key, None)
        return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Match:
    index: int
    rule: Rule

    @property
    def label(self) -> str:
        """The name the assignment records: the rule's own, else its place in the configuration."""
        return self.rule.name or f"routing.rules[{self.index}]"


def rule_matches(rule: Rule, facts: LeadFacts) -> bool:
    for key, accepted in rule.match.items():
        value = facts.value(key)
        if value is None or value.casefold() not in {a.strip().casefold() for a in accepted}:
            return False
    if rule.min_score is None and rule.max_score is None:
        return True
    if facts.motivation is None:
        return False
    low_ok = rule.min_score is None or facts.motivation >= rule.min_score
    return low_ok and (rule.max_score is None or facts.motivation <= rule.max_score)


def matching_rules(rules: Sequence[Rule], facts: LeadFacts) -> list[Match]:
    """Every rule the lead matches, in configuration order: the first wins; the caller skips a rule whose team
    does not exist (logged) and takes the next."""
    return [Match(i, rule) for i, rule in enumerate(rules) if rule_matches(rule, facts)]


@dataclass(frozen=True, slots=True)
class Member:
    """A team member as the router sees them; ``today`` / ``month``: MQLs assigned to them in the windows."""

    user_id: int
    weight: int = 0
    capacity: int = 0
    monthly_cap: int = 0
    credit: float = 0.0
    last_assigned_at: datetime | None = None
    away: bool = False
    disabled: bool = False
    today: int = 0
    month: int = 0

    @property
    def share(self) -> int:
        """The member's weight in the round robin: weight, else capacity, else 1."""
        return self.weight if self.weight > 0 else self.capacity if self.capacity > 0 else 1

    def eligible(self, excluded: frozenset[int] = frozenset()) -> bool:
        if self.away or self.disabled or self.user_id in excluded:
            return False
        return (self.capacity <= 0 or self.today < self.capacity) and (
            self.monthly_cap <= 0 or self.month < self.monthly_cap)


def tie_hash(lead_id: int, user_id: int) -> int:
    """Stable across processes and runs (unlike hash()): the last tie-breaker."""
    return int.from_bytes(hashlib.blake2b(f"{lead_id}:{user_id}".encode(), digest_size=8).digest(), "big")


_NEVER = datetime.min.replace(tzinfo=UTC)


def pick(members: Iterable[Member], lead_id: int, *, at: datetime,
         excluded: frozenset[int] = frozenset()) -> tuple[Member, tuple[Member, ...]] | None:
    """One step of the round robin: the chosen member (counters updated) and every member after the step
    (credits, counts and last_assigned_at as they now are). None when nobody is eligible: nothing changes."""
    everyone = tuple(members)
    eligible = [m for m in everyone if m.eligible(excluded)]
    if not eligible:
        return None
    total = sum(m.share for m in eligible)
    raised = {m.user_id: m.credit + m.share for m in eligible}

    def rank(m: Member) -> tuple[float, datetime, int]:
        # Highest credit; then the earliest last assignment (never = earliest); then the hash (the smallest).
        return -raised[m.user_id], m.last_assigned_at or _NEVER, tie_hash(lead_id, m.user_id)

    winner = min(eligible, key=rank)
    after: list[Member] = []
    chosen = winner
    for m in everyone:
        if m.user_id == winner.user_id:
            chosen = replace(m, credit=raised[m.user_id] - total, last_assigned_at=at, today=m.today + 1,
                              month=m.month + 1)
            after.append(chosen)
        elif m.user_id in raised:
            after.append(replace(m, credit=raised[m.user_id]))
        else:
            after.append(m)
    return chosen, tuple(after)


def day_start(at: datetime) -> datetime:
    """Midnight China time of ``at``'s day, in UTC: the daily cap's window starts there."""
    local = at.astimezone(CHINA)
    return datetime.combine(local.date(), time(0), CHINA).astimezone(UTC)


def month_start(at: datetime) -> datetime:
    """The 30-day cap's window: the last 30 days up to ``at``."""
    return at - timedelta(days=MONTH_DAYS)
