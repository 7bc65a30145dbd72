"""One batch of ``leadrelay scores recompute``, computed: what to write for each lead and what it changes.

No I/O: the database side (storage/recompute/pg.py for PostgreSQL, storage/recompute/sql.py for any
SQLAlchemy backend) reads the batch, hands it here, writes the scores and publishes the batch's
QuadrantEntered events (leads/events.py) in the same transaction: the subscribers (the quadrant actions,
storage/repos/quadrant_actions.py, and whatever else the caller registered) get the whole batch in one call.
The arithmetic is exactly the incremental path's (storage/repos/scores.py: LeadScorer._save):
``model.replay`` of the lead's scored touchpoints (as ``fold``: already in replay's order, they are stepped
through without sorting again), ``model.ability``, ``model.motivation(state, now)``, ``rules.quadrant``, and
the same event with the lead's stage, so a recomputed row is the row the incremental path would have written
at ``now``.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from leads.events import QuadrantEntered
from leads.lifecycle import quadrant_effects
from leads.scoring import MotivationState, ScoreEvent, ScoreModel
from leads.scoring_rules import MotivationRule

SCORE_EPSILON = 1e-6  # a stored score that differs by more than this "changed"
_CACHE_MAX = 100_000
# MotivationRule fields that never look at a touchpoint's detail. Any other field set (content filters,
# once_per, or one added later) means the rule may: its kind's details are read.
_NOT_DETAIL = frozenset({"id", "event", "points", "channel", "scene", "max_per_lead", "max_per_day",
                         "min_occurrences"})


@dataclass(frozen=True, slots=True)
class LeadRow:
    """A lead as the recompute reads it, with its stored score (``None`` when it has no row yet)."""

    id: int
    stage: str
    profile: Mapping[str, Any]
    ability: float | None = None
    motivation: float | None = None
    quadrant: str | None = None


@dataclass(slots=True)
class BatchResult:
    leads_seen: int = 0
    last_lead_id: int = 0
    score_changes: int = 0
    quadrant_changes: int = 0
    stage_changes: int = 0
    # lead_id, ability, motivation, quadrant, state (MotivationState.to_json())
    scores: list[tuple[int, float, float, str, dict[str, Any]]] = field(default_factory=list)
    entered: list[QuadrantEntered] = field(default_factory=list)  # published with the batch's writes

    def add(self, other: BatchResult) -> None:
        """Count ``other`` in (the rows stay with it)."""
        self.leads_seen += other.leads_seen
        self.score_changes += other.score_changes
        self.quadrant_changes += other.quadrant_changes
        self.stage_changes += other.stage_changes


def score_batch(model: ScoreModel, leads: list[LeadRow], events: Mapping[int, list[ScoreEvent]], now: datetime,
                ability_of: AbilityCache | None = None) -> BatchResult:
    """Scores and quadrant changes for ``leads`` (ascending ids) from their scored events at ``now``."""
    out = BatchResult(leads_seen=len(leads), last_lead_id=leads[-1].id if leads else 0)
    rules = model.rules
    actions = rules.actions
    ability_of = ability_of or AbilityCache(model)
    for lead in leads:
        state = fold(model, events.get(lead.id, ()))
        ability = ability_of(lead.profile)
        motivation = model.motivation(state, now)
        quadrant = rules.quadrant(ability, motivation)
        out.scores.append((lead.id, ability, motivation, quadrant, state.to_json()))
        if (lead.ability is None or lead.motivation is None or abs(lead.ability - ability) > SCORE_EPSILON
                or abs(lead.motivation - motivation) > SCORE_EPSILON):
            out.score_changes += 1
        if quadrant == lead.quadrant:
            continue
        out.quadrant_changes += 1
        out.entered.append(QuadrantEntered(lead.id, lead.quadrant, quadrant, lead.stage, now))
        # For the report (a dry run publishes nothing): the moves the quadrant actions make of this event.
        if quadrant_effects(lead.quadrant, quadrant, lead.stage, actions).transition is not None:
            out.stage_changes += 1
    return out


def fold(model: ScoreModel, events: Sequence[ScoreEvent]) -> MotivationState:
    """``model.replay(events)`` for events read in (occurred_at, id) order, without sorting them again.

    That is replay's own order (touchpoint ids are unique), so stepping through them is what replay does;
    should they not be in order after all, ``step`` says so and replay sorts them.
    """
    state = MotivationState()
    step = model.step
    for event in events:
        if step(state, event) is None:
            return model.replay(events)
    return state


def detail_kinds(model: ScoreModel) -> list[str]:
    """Touchpoint kinds some rule reads the detail of; the others' details cannot change a score."""
    plain = MotivationRule("", "", 0)
    return sorted({rule.event for rule in model.rules.motivation for f in fields(rule)
                   if f.name not in _NOT_DETAIL and getattr(rule, f.name) != getattr(plain, f.name)})


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a batch allocates millions of small acyclic objects (records,
    events, states) that reference counting frees; the collector's passes over them cost up to a third of
    building the events. Nested use keeps it paused until the outermost ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class AbilityCache:
    """``model.ability`` memoised on the attributes its rules read: profiles repeat a handful of codes."""

    def __init__(self, model: ScoreModel) -> None:
        self._model = model
        self._attributes = tuple(sorted({r.attribute for r in model.rules.ability}))
        self._cache: dict[tuple[Any, ...], float] = {}

    def __call__(self, profile: Mapping[str, Any]) -> float:
        # The type too: 1, 1.0 and True are equal keys but do not match the same rules.
        key = tuple((type(v), v) for v in map(profile.get, self._attributes))
        try:
            return self._cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list): not worth caching
            return self._model.ability(profile)
        if len(self._cache) >= _CACHE_MAX:  # a rule on free text (a company name) would not repeat
            self._cache.clear()
        value = self._cache[key] = self._model.ability(profile)
        return value


class DetailParser:
    """Touchpoint details as stored JSON text -> dicts, parsed once per distinct text.

    Scored details repeat (the same content item, ``{}``); ``step`` only reads them, so sharing is safe.
    """

    def __init__(self) -> None:
        self._cache: dict[str, Mapping[str, Any]] = {}

    def __call__(self, text: str | None) -> Mapping[str, Any]:
        if text is None:
            return {}
        try:
            return self._cache[text]
        except KeyError:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            value = self._cache[text] = json.loads(text) or {}
            return value


def group_events(rows: Iterable[tuple[Any, ...]], parse: DetailParser | None = None) -> dict[int, list[ScoreEvent]]:
    """(lead_id, id, kind, occurred_at, channel, scene, detail) rows -> each lead's ScoreEvents.

    ``detail`` is JSON text when ``parse`` is given (asyncpg), else already a dict (SQLAlchemy's JSON type).
    """
    out: dict[int, list[ScoreEvent]] = {}
    for lead_id, tid, kind, occurred_at, channel, scene, detail in rows:
        bucket = out.get(lead_id)
        if bucket is None:
            bucket = out[lead_id] = []
        bucket.append(ScoreEvent(tid, kind, occurred_at, channel, scene,
                                 parse(detail) if parse is not None else (detail or {})))
    return out
