"""Response models shared by several endpoints (the JSON shapes of serialize.py, typed for the OpenAPI document).

Times stay the strings ``serialize.iso`` makes (``datetime.isoformat``: ``+00:00``, not pydantic's ``Z``), so
the answers read exactly as they always have; the schema still says they are date-times.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from sdr_console.api.serialize import iso, lead_summary, transition_json
from sdr_console.api.spec import QueryModel, ResponseModel
from storage.models import Lead, StageTransition

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


# Query integers are ASCII digits only: parse_query (spec.py) checks every int field of a query model.
Limit = Annotated[int, Field(ge=1, le=200, description="每页条数")]
Offset = Annotated[int, Field(ge=0, le=10_000_000, description="跳过的条数")]
JsonObject = dict[str, Any]


class PageQuery(QueryModel):
    limit: Limit = 50
    offset: Offset = 0


class LeadSummary(ResponseModel):
    id: int
    display_name: str
    stage: str
    consent: str | None
    created_at: Timestamp | None
    last_activity_at: Timestamp | None

    @classmethod
    def of(cls, lead: Lead) -> LeadSummary:
        return cls(**lead_summary(lead))


class Transition(ResponseModel):
    id: int
    from_stage: str | None = Field(alias="from")
    to: str
    actor: str
    actor_id: str | None
    reason: str | None
    touchpoint_id: int | None
    occurred_at: Timestamp | None

    @classmethod
    def of(cls, t: StageTransition) -> Transition:
        return cls.model_validate(transition_json(t))


__all__ = ["JsonObject", "LeadSummary", "Limit", "Offset", "PageQuery", "Timestamp", "Transition", "iso"]
