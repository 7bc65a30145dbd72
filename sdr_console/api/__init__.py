"""The console's JSON API, one module per resource; ``add_console_api`` mounts them all (called by bot/app.py).

Every endpoint takes its services from the app keys (bot/keys.py), answers errors in the one shape of
bot/web/errors.py and reads its data through storage/repos/.
"""

from __future__ import annotations

from aiohttp import web

from sdr_console.api import (
    accepted_export,
    assignments,
    audit_log,
    bant,
    batches,
    capture,
    customer_transfers,
    duplicates,
    handoff_decisions,
    handoffs,
    health,
    journeys,
    lead_export,
    lead_list,
    lead_work,
    leads,
    openapi,
    outbox,
    people,
    profile,
    saved_filters,
    scores,
    segments,
    tasks,
    timeline,
    webhook_deliveries,
)


def add_console_api(app: web.Application) -> None:
    lead_list.add_routes(app)  # GET /api/leads (filters, search, sort, pages)
    lead_export.add_routes(app)  # GET /api/leads/export.csv (before /api/leads/{id})
    saved_filters.add_routes(app)  # /api/saved-filters
    leads.add_routes(app)  # GET /api/leads/{id}
    profile.add_routes(app)  # PATCH /api/leads/{id}/profile
    timeline.add_routes(app)  # GET /api/leads/{id}/timeline
    scores.add_routes(app)  # /api/leads/{id}/score, /stages, POST /stage
    bant.add_routes(app)  # PUT /api/leads/{id}/bant, POST /api/leads/{id}/transfer
    assignments.add_routes(app)  # POST /api/leads/{id}/assign, GET /api/assignments
    handoff_decisions.add_routes(app)  # POST /api/leads/{id}/accept, /return; GET /api/handoff/return-reasons
    webhook_deliveries.add_routes(app)  # GET /api/webhook-deliveries, POST /api/webhook-deliveries/{id}/resend
    accepted_export.add_routes(app)  # GET /api/exports/accepted.csv
    lead_work.add_routes(app)  # /api/leads/{id}/notes, /tasks, /tasks/{id}/done, POST /tags
    tasks.add_routes(app)  # GET /api/tasks (across leads: my tasks, overdue)
    capture.add_routes(app)  # /api/content, POST /api/leads/{id}/erase
    handoffs.add_routes(app)  # GET /api/handoffs, POST /api/handoffs/{id}/claim, /reply
    outbox.add_routes(app)  # GET /api/outbox
    duplicates.add_routes(app)  # GET /api/duplicates, POST /api/duplicates/{id}/merge, /dismiss
    people.add_routes(app)  # /api/users, /api/teams
    customer_transfers.add_routes(app)  # POST /api/customer-transfers, GET /api/customer-transfers/{id}
    segments.add_routes(app)  # GET|POST /api/segments
    batches.add_routes(app)  # POST /api/batches/preview, POST /api/batches, GET /api/batches/{id}
    journeys.add_routes(app)  # GET /api/journeys, GET /api/journeys/{id}/enrolments
    audit_log.add_routes(app)  # GET /api/audit
    health.add_routes(app)  # GET /healthz
    openapi.add_routes(app)  # GET /api/openapi.json (from every route's spec), /api/docs
