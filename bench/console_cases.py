"""The requests bench/console.py measures: each case is a list of variants, sent round-robin, so no one cached
answer (PostgreSQL's or the server's) serves a whole case.

Dates are relative to the day of the run (the seed spreads leads over the last 180 days, bench/scoring_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

import console_data

LIST_P95_MS, SEARCH_P95_MS, LEAD_360_P95_MS = 200.0, 300.0, 150.0
EXPORT_ROWS_PER_S = 20_000
STAGES = ("mql", "sal", "sql", "customer", "recycled", "unsubscribed")
QUADRANTS = ("sales_ready", "nurture", "other_solution", "public_pool")
CHANNELS = ("email", "website", "wecom", "expo", "miniprogram")
SCENES = ("pricing", "careers", "form", "event", "newsletter")
TAGS = ("nurture", "other_solution", "public_pool")


@dataclass(frozen=True)
class Case:
    group: str  # "list", "search" or "360": which target applies
    name: str
    paths: tuple[str, ...]

    @property
    def target_ms(self) -> float:
        return {"list": LIST_P95_MS, "search": SEARCH_P95_MS, "360": LEAD_360_P95_MS}[self.group]


def _q(path: str, params: dict[str, object] | list[tuple[str, object]]) -> str:
    return f"{path}?{urlencode(params)}"


def _days(today: date, back_from: int, length: int) -> dict[str, str]:
    start = today - timedelta(days=back_from)
    return {"from": start.isoformat(), "to": (start + timedelta(days=length - 1)).isoformat()}


def list_cases(today: date) -> list[Case]:
    """Filter combinations of GET /api/leads (50 a page, the list's default sort unless said)."""
    api = "/api/leads"
    week = [_days(today, back, 7) for back in range(20, 170, 15)]
    return [
        Case("list", "no filter", tuple(_q(api, {"offset": o}) for o in (0, 50, 100, 150, 200))),
        Case("list", "stage", tuple(_q(api, {"stage": s}) for s in STAGES)),
        Case("list", "stage=lead + quadrant", tuple(_q(api, {"stage": "lead", "quadrant": q}) for q in QUADRANTS)),
        Case("list", "ability_min + motivation_min", tuple(
            _q(api, {"ability_min": a, "motivation_min": m}) for a in (20, 40, 60) for m in (30, 60))),
        Case("list", "motivation range, sort=motivation", tuple(
            _q(api, {"motivation_min": lo, "motivation_max": lo + 20, "sort": "motivation"}) for lo in (10, 40, 80))),
        Case("list", "channel", tuple(_q(api, {"channel": c}) for c in CHANNELS)),
        Case("list", "scene", tuple(_q(api, {"scene": s}) for s in SCENES)),
        Case("list", "owner", tuple(_q(api, {"owner": o}) for o in range(1, 51, 7))),
        Case("list", "owner=none (pool)", tuple(_q(api, {"owner": "none", "stage": s}) for s in ("lead", "mql"))),
        Case("list", "team", tuple(_q(api, {"team": t}) for t in range(1, console_data.TEAMS + 1))),
        Case("list", "tag", tuple(_q(api, {"tag": t}) for t in TAGS)),
        Case("list", "consent", tuple(_q(api, {"consent": c}) for c in ("granted", "revoked"))),
        Case("list", "created range (7 days)", tuple(
            _q(api, {"created_from": w["from"], "created_to": w["to"]}) for w in week)),
        Case("list", "active range (7 days)", tuple(
            _q(api, {"active_from": w["from"], "active_to": w["to"]}) for w in week)),
        Case("list", "stage + quadrant + channel + pool", tuple(
            _q(api, {"stage": "lead", "quadrant": q, "channel": c, "owner": "none"})
            for q in ("nurture", "sales_ready") for c in ("website", "email"))),
        Case("list", "team + consent + created range", tuple(
            _q(api, {"team": t, "consent": "granted", "created_from": w["from"], "created_to": w["to"]})
            for t in (1, 3, 5) for w in week[:3])),
        Case("list", "sort=created_at asc, page 20", tuple(
            _q(api, {"sort": "created_at", "order": "asc", "offset": 1000 + 50 * i}) for i in range(5))),
    ]


def search_cases(fragments: list[str], phones: list[str], emails: list[str]) -> list[Case]:
    api = "/api/leads"
    three = [f for f in fragments if len(f) >= 3]
    return [
        Case("search", "q = name/company fragment (>= 3 chars)", tuple(_q(api, {"q": f}) for f in three)),
        Case("search", "q = 2-char name fragment", tuple(_q(api, {"q": f[:2]}) for f in fragments[::4])),
        Case("search", "q + stage", tuple(_q(api, [("q", f), ("stage", "lead"), ("stage", "mql")]) for f in three)),
        Case("search", "q = phone last 4", tuple(_q(api, {"q": p[-4:]}) for p in phones)),
        Case("search", "q = full phone", tuple(_q(api, {"q": p}) for p in phones)),
        Case("search", "q = email", tuple(_q(api, {"q": e}) for e in emails)),
    ]


def lead_cases(lead_ids: list[int]) -> list[Case]:
    return [
        Case("360", "page /console/leads/{id}", tuple(f"/console/leads/{i}" for i in lead_ids)),
        Case("360", "timeline first page", tuple(f"/api/leads/{i}/timeline" for i in lead_ids)),
    ]


def export_path(today: date, days: int) -> str:
    """About 1M / 180 * days leads: 18 days for ~100,000 of a million."""
    window = _days(today, 30 + days, days)
    return _q("/api/leads/export.csv", {"created_from": window["from"], "created_to": window["to"]})
