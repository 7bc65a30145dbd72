"""The hostile corpus of the journeys API (sdr_console/api/journeys.py): ``GET /api/journeys`` and
``GET /api/journeys/{journey_id}/enrolments``. Every case is a clear 4xx in the one JSON error shape, never a 500.

Hooked into tests/bot/web/test_hostile_corpus.py with the other corpora.
"""

from __future__ import annotations

from tests.bot.web.hostile_corpus import Case, auth_cases, heads, query_cases

LIST = ("GET", "/api/journeys")
ENROLMENTS = ("GET", "/api/journeys/{journey_id}/enrolments")


def journeys_corpus() -> list[Case]:
    gets = auth_cases(LIST, b"/api/journeys") + auth_cases(ENROLMENTS, b"/api/journeys/welcome/enrolments")
    gets += query_cases(ENROLMENTS, b"/api/journeys/welcome/enrolments", ("status", "position", "limit", "before"))
    gets += [Case(ENROLMENTS, f"journey id {name}", b"/api/journeys/" + value + b"/enrolments") for name, value in {
        "unknown": b"nope", "upper case": b"WELCOME", "NUL": b"%00", "invalid utf-8": b"%FF", "dot-dot": b"..",
        "300 characters": b"a" * 300, "quote": b"welcome%27"}.items()]
    gets += [Case(ENROLMENTS, f"position {name}", b"/api/journeys/welcome/enrolments?position=" + value)
             for name, value in {"sql": b"1%3Bdrop", "branch only": b"1.yes", "maybe": b"1.maybe.0",
                                 "deep": b"1" + b".yes.1" * 40, "negative": b"-1"}.items()]
    return gets + heads(gets)
