"""Who gets an MQL: the first ``[[routing.rules]]`` entry the lead matches names a team, and inside the team a
smooth weighted round robin picks the member. Pure: storage/repos/routing.py reads the facts and counters,
locks, and writes what ``ranked`` and ``advance`` decide.

Matching. A rule matches when every key it names accepts the lead's value (any of the rule's values; equal
after trimming, case-insensitively) and the motivation score is within min_score..max_score (inclusive; a lead
without a score matches no rule that has a bound). ``product_line`` reads the profile's ``product_line``, else
its ``product_interest``; ``channel`` is the channel of the lead's first touchpoint.

Picking (nginx's smooth weighted round robin, kept so that only the winner's row changes). Each member has a
virtual time: the MQLs they were given / their weight. The team's virtual time is the weighted mean of its
eligible members' plus 1/total weight (this MQL); the member furthest behind their share (weight x (team's -
own)) wins and their virtual time grows by 1/weight. That is exactly nginx's credit (weight x lag), so over any
run each member gets its weight's share, spread out rather than in bursts; but as only the winner's state
changes, concurrent routings in one team need not queue behind one lock: each locks just the member it takes
(storage/repos/routing.py, ``FOR UPDATE SKIP LOCKED``) and the next takes the next in the ranking. Virtual times
persist (team_members.virtual_time), so the shares hold across processes and days. Someone who fell behind
(away, full, newly added) counts from two rounds behind the rest of the team: they catch up by about twice
their weight in MQLs, not in a burst that starves the rest. The weight is ``team_members.weight`` when above 0,
else the daily ``capacity`` when above 0 (a member who may take 20 a day gets twice the share of one who may take
10), else 1.
Not eligible: away, disabled, excluded (the member being re-routed away from), at the daily cap (``capacity``
MQLs assigned today, China time) or at the 30-day cap (``monthly_cap``); 0 means no cap. Equal standing goes to
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
    virtual_time: float = 0.0
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


ROUNDS = 2.0  # how far behind the rest of the team a member's virtual time may count, in rounds


def floors(members: Iterable[Member], excluded: frozenset[int] = frozenset()) -> dict[int, float]:
    """user id -> the lowest virtual time each eligible member counts from: two rounds behind the least
    advanced of the other eligible members. The round robin keeps everyone within one round of each other, so
    only someone who was away, full or newly added is lifted; and a routing that has advanced some members in
    its own transaction (a batch) does not lift the rest, as the least advanced other is unmoved."""
    eligible = [m for m in members if m.eligible(excluded)]
    lowest = sorted(eligible, key=lambda m: m.virtual_time)[:2]
    out = {}
    for m in eligible:
        others = [o.virtual_time for o in lowest if o.user_id != m.user_id]
        out[m.user_id] = others[0] - ROUNDS if others else m.virtual_time
    return out


def ranked(members: Iterable[Member], lead_id: int, excluded: frozenset[int] = frozenset()) -> list[Member]:
    """The eligible members in the order they would win this lead: the one furthest behind their share first
    (weight x (team virtual time after this MQL - own virtual time), the smooth round robin's credit), then the
    earliest last assignment (never = earliest), then the smallest (lead, member) hash."""
    eligible = [m for m in members if m.eligible(excluded)]
    if not eligible:
        return []
    low, total = floors(eligible), sum(m.share for m in eligible)
    own = {m.user_id: max(m.virtual_time, low[m.user_id]) for m in eligible}
    team = (sum(m.share * own[m.user_id] for m in eligible) + 1) / total

    def rank(m: Member) -> tuple[float, datetime, int]:
        return -m.share * (team - own[m.user_id]), m.last_assigned_at or _NEVER, tie_hash(lead_id, m.user_id)

    return sorted(eligible, key=rank)


def advance(member: Member, *, floor: float, at: datetime) -> Member:
    """The winner after the step: its virtual time (lifted to ``floor``) grows by 1/weight; counted."""
    return replace(member, virtual_time=max(member.virtual_time, floor) + 1.0 / member.share, last_assigned_at=at,
                   today=member.today + 1, month=member.month + 1)


def pick(members: Iterable[Member], lead_id: int, *, at: datetime,
         excluded: frozenset[int] = frozenset()) -> tuple[Member, tuple[Member, ...]] | None:
    """One step with every member's state known (one router at a time): the chosen member (counters updated)
    and every member after the step. None when nobody is eligible: nothing changes."""
    everyone = tuple(members)
    order = ranked(everyone, lead_id, excluded)
    if not order:
        return None
    chosen = advance(order[0], floor=floors(everyone, excluded)[order[0].user_id], at=at)
    return chosen, tuple(chosen if m.user_id == chosen.user_id else m for m in everyone)


def day_start(at: datetime) -> datetime:
    """Midnight China time of ``at``'s day, in UTC: the daily cap's window starts there."""
    local = at.astimezone(CHINA)
    return datetime.combine(local.date(), time(0), CHINA).astimezone(UTC)


def month_start(at: datetime) -> datetime:
    """The 30-day cap's window: the last 30 days up to ``at``."""
    return at - timedelta(days=MONTH_DAYS)
