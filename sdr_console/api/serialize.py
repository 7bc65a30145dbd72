"""How rows look in the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.models import Lead, StageTransition

MAX_LIMIT = 200  # the largest page any list endpoint returns


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "display_name": lead.display_name or f"潜客 #{lead.id}", "stage": lead.stage,
            "consent": lead.consent, "created_at": iso(lead.created_at),
            "last_activity_at": iso(lead.last_activity_at)}


def transition_json(t: StageTransition) -> dict[str, Any]:
    return {"id": t.id, "from": t.from_stage, "to": t.to_stage, "actor": t.actor, "actor_id": t.actor_id,
            "reason": t.reason, "touchpoint_id": t.touchpoint_id, "occurred_at": iso(t.occurred_at)}
