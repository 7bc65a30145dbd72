"""A plain event described as data: whose it is, when, the touches it leaves on their lead and
what it hands to an SDR.

Most callbacks (a message, a menu click, a location report) do nothing but that. Described this way, one
such event is recorded through the lead repository like any other, and a whole batch of them is recorded by
storage/repos/activity_batch.py with a few multi-row statements; both read the same description, so they
cannot drift apart. Events that do more (a new follower, consent words, a conversation for an SDR) keep
their own handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leads.identity import IdentityKey
from leads.sources import Source


@dataclass(frozen=True, slots=True)
class Touch:
    """One touchpoint to record: its kind (scored when a motivation rule looks at it), source and detail."""

    kind: str
    source: Source
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HandOff:
    """A message the bot could not answer, for an SDR (the handoffs queue)."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Activity:
    """The sender (one identity WeChat vouches for), when it happened, and its touches in order."""

    identity: IdentityKey
    occurred_at: datetime
    touches: tuple[Touch, ...]
    oa_interaction: bool = False  # the user's own action in the OA: it opens the 48-hour window
    handoff: HandOff | None = None

    def __post_init__(self) -> None:
        if not self.identity.strong:
            raise ValueError("an activity's sender must be an identity WeChat vouches for")
