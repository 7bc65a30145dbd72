"""The 360's sections: what each one shows, read with a few bounded queries. The page renders them all once; each
also has its own fragment route (sdr_console/pages/lead.py) that re-renders it after an action on the page
(console.js sends "refresh" to the section, htmx fetches the fragment)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.keys import CONFIG, SCORING
from bot.logs.redact import short_id
from leads import bant as bant_rules
from leads.access import LIFECYCLE_ACTORS
from leads.identity import EMAIL, PHONE, PHONE_CONFLICT
from leads.lifecycle import STAGE_LABELS, TRANSITIONS
from leads.profile import DISPLAY_NAME, LABELS, PROFILE_SPECS, current, label_of
from leads.scoring_rules import QUADRANT_LABELS
from sdr_console.api.duplicates import masked
from sdr_console.api.scores import scorecard_for
from sdr_console.api.timeline import describe
from sdr_console.pages.lead_access import LeadView
from storage.repos import lead_work
from storage.repos.bant import bant_of
from storage.repos.lead_360 import assignable_users, identities_of, open_conflicts, open_suggestions
from storage.repos.lead_history import profile_history
from storage.repos.lead_views import stage_history
from storage.repos.timeline import Cursor, timeline_page

TIMELINE_PAGE = 30
NOTES_SHOWN = 50
TASKS_SHOWN = 50
ACTOR_LABELS = {"system": "系统", "sdr": "SDR", "sales": "销售"}
IDENTITY_LABELS = {PHONE: "手机号", EMAIL: "邮箱", "oa_openid": "公众号 OpenID", "mp_openid": "小程序 OpenID",
                   "unionid": "微信 UnionID", "wecom_external": "企业微信客户"}
CONFLICT_LABELS = {PHONE_CONFLICT: "两个潜客都有经微信验证的手机号，且号码不同，不能合并"}
Loader = Callable[[web.Request, LeadView], Awaitable[dict[str, Any]]]


def clock(request: web.Request) -> Callable[[datetime | str | None], str]:
    """Times as the team reads them: in the scoring time zone (the business's), to the minute."""
    zone = ZoneInfo(request.app[SCORING].rules.timezone)

    def when(value: datetime | str | None) -> str:
        if value is None or value == "":
            return "—"
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return when


def _identity_value(kind: str, value: str) -> str:
    # Phone and email are how an SDR reaches the person; platform ids only tell the team which account it is.
    return value if kind in (PHONE, EMAIL) else short_id(value)


async def profile_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    lead = view.lead
    values = current(lead.display_name, lead.profile or {})
    fields = [{"name": name, "label": spec.label, "kind": spec.kind, "value": values[name] or "",
               "shown": label_of(name, values[name]), "choices": spec.choices, "max_len": spec.max_len,
               "placeholder": spec.placeholder} for name, spec in PROFILE_SPECS.items()]
    identities = [{"label": IDENTITY_LABELS.get(i.kind, i.kind), "value": _identity_value(i.kind, i.value),
                   "verified": i.verified} for i in await identities_of(view.session, lead.id)]
    history = []
    for entry in await profile_history(view.session, lead.id):
        before, after = entry.before or {}, entry.after or {}
        history.append({"at": entry.at, "who": entry.actor_label,
                        "changes": [{"label": LABELS.get(name, name), "before": label_of(name, before.get(name)),
                                     "after": label_of(name, after.get(name))} for name in after]})
    return {"display_name": values[DISPLAY_NAME] or "", "fields": fields, "identities": identities,
            "profile_history": history}


async def score_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    model = request.app[SCORING]
    card, _ = await scorecard_for(view.session, model, view.lead)
    rules = model.rules
    events = {r.id: r.event for r in rules.motivation}
    lines = [{"score": "能力" if c.score == "ability" else "意向", "rule": c.rule_id, "points": c.points,
              "current": round(c.current, 1),
              "why": f"{LABELS.get(c.attribute or '', c.attribute)}：{label_of(c.attribute or '', str(c.value))}"
              if c.score == "ability" else (events.get(c.rule_id) or c.rule_id), "at": c.occurred_at}
             for c in card.contributions]
    return {"score": {"ability": round(card.ability, 1), "motivation": round(card.motivation, 1),
                      "ability_threshold": rules.ability_threshold, "motivation_threshold": rules.motivation_threshold,
                      "quadrant": QUADRANT_LABELS.get(card.quadrant, card.quadrant), "lines": lines}}


def _moves(stage: str, role: str) -> list[dict[str, Any]]:
    """The stages this user may move the lead to, in lifecycle order, and in which capacity."""
    mine = LIFECYCLE_ACTORS.get(role, frozenset())
    moves = []
    for to, who in TRANSITIONS.get(stage, {}).items():
        capacities = sorted(mine & who)
        if capacities:
            moves.append({"to": to, "label": STAGE_LABELS[to], "actor": capacities[0]})
    return moves


async def stages_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    history = [{"from": STAGE_LABELS.get(t.from_stage, t.from_stage), "to": STAGE_LABELS.get(t.to_stage, t.to_stage),
                "actor": ACTOR_LABELS.get(t.actor, t.actor), "who": t.actor_id, "reason": t.reason,
                "at": t.occurred_at} for t in reversed(await stage_history(view.session, view.lead.id))]
    capacities = sorted(LIFECYCLE_ACTORS.get(view.current.user.role, frozenset()))
    return {"stage_history": history[:50], "moves": _moves(view.lead.stage, view.current.user.role),
            "capacities": [(c, ACTOR_LABELS[c]) for c in capacities] if len(capacities) > 1 else []}


async def tags_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    return {"tags": await lead_work.tags_of(view.session, view.lead.id)}


async def notes_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    return {"notes": await lead_work.list_notes(view.session, view.lead.id, NOTES_SHOWN, 0)}


async def tasks_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    rows = await lead_work.list_tasks(view.session, view.lead.id, None, TASKS_SHOWN, 0)
    users = await assignable_users(view.session) if view.can.edit else []
    return {"tasks": [{"task": t, "assignee": name} for t, name in rows],
            "assignees": [(u.username, u.display_name or u.username) for u in users],
            "now": datetime.now(ZoneInfo(request.app[SCORING].rules.timezone))}


async def bant_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    record = bant_of(view.lead)
    required = request.app[CONFIG].bant.required
    fields = []
    for name in bant_rules.FIELDS:
        choices = bant_rules.BUDGET_RANGES if name == bant_rules.BUDGET else bant_rules.CHOICES.get(name, ())
        value = record.get(name, "")
        fields.append({"name": name, "label": bant_rules.FIELD_LABELS[name], "value": value,
                       "shown": bant_rules.label_of(name, value) if value else "—", "choices": choices,
                       "required": name in required, "filled": bant_rules.filled(record, name),
                       "free_text": bool(value) and name == bant_rules.BUDGET and value not in dict(choices)})
    lacking = bant_rules.missing(record, required)
    return {"bant_fields": fields, "missing": [bant_rules.FIELD_LABELS[n] for n in lacking]}


async def duplicates_section(request: web.Request, view: LeadView) -> dict[str, Any]:
    """Only for people who may merge: the other lead may be one this user may not see (a colleague's), and
    its name is not theirs to read (GET /api/duplicates has the same rule)."""
    if not view.can.merge:
        return {"suggestions": [], "conflicts": []}
    suggestions = [{"id": s.id, "other_id": other.id, "other_name": other.display_name or f"潜客 #{other.id}",
                    "via": f"{IDENTITY_LABELS.get(s.identity_kind, s.identity_kind)} "
                           f"{masked(s.identity_kind, s.identity_value)}", "at": s.created_at}
                   for s, other in await open_suggestions(view.session, view.lead.id)]
    conflicts = [{"other_id": c.other_lead_id if c.lead_id == view.lead.id else c.lead_id,
                  "reason": CONFLICT_LABELS.get(c.reason, c.reason),
                  "via": f"{IDENTITY_LABELS.get(c.identity_kind, c.identity_kind)} "
                         f"{masked(c.identity_kind, c.identity_value)}", "at": c.created_at}
                 for c in await open_conflicts(view.session, view.lead.id)]
    return {"suggestions": suggestions, "conflicts": conflicts}


async def timeline_section(request: web.Request, view: LeadView, before: Cursor | None = None) -> dict[str, Any]:
    page = await timeline_page(view.session, view.lead.id, before, TIMELINE_PAGE)
    return {"items": [describe(e) for e in page.entries], "next_before": page.next.encode() if page.next else None}


# name -> (template, loader): the fragment routes and the page use the same pair.
SECTIONS: dict[str, tuple[str, Loader]] = {
    "profile": ("lead_profile.html", profile_section),
    "score": ("lead_score.html", score_section),
    "stages": ("lead_stages.html", stages_section),
    "tags": ("lead_header.html", tags_section),
    "notes": ("lead_notes.html", notes_section),
    "tasks": ("lead_tasks.html", tasks_section),
    "bant": ("lead_bant.html", bant_section),
    "duplicates": ("lead_duplicates.html", duplicates_section),
    "timeline": ("lead_timeline.html", timeline_section),
}
