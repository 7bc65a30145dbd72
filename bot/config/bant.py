"""``[bant]``: which BANT fields (leads/bant.py) an SDR must fill before marking a lead ready for sales."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config.validate import check
from leads.bant import FIELDS

if TYPE_CHECKING:
    from bot.config.core import Config


@dataclass(frozen=True, slots=True)
class BantConfig:
    # Any subset of budget, authority, need, timeline; empty = a lead may be handed over unqualified.
    required: tuple[str, ...] = FIELDS


def validate_bant(config: Config) -> None:
    required = config.bant.required
    for name in required:
        check(name in FIELDS, "bant.required", f"unknown field {name!r}; known: {', '.join(FIELDS)}")
    check(len(set(required)) == len(required), "bant.required", "must not repeat a field")
