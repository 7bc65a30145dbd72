"""The hostile corpus of the task list across leads: ``GET /api/tasks`` (sdr_console/api/tasks.py), the console's
我的任务 page with its board fragment (sdr_console/pages/tasks.py) and the journey pages
(sdr_console/pages/journeys.py); pages are HTML and the corpus is not signed in: no JSON shape.

Hooked into tests/bot/web/test_hostile_corpus.py as ``CASES = corpus() + handoff_corpus() + tasks_corpus()``.
"""

from __future__ import annotations

from dataclasses import replace

from tests.bot.web.hostile_corpus import Case, auth_cases, heads, query_cases

TASKS = ("GET", "/api/tasks")


def tasks_corpus() -> list[Case]:
    gets = query_cases(TASKS, b"/api/tasks", ("limit", "offset", "status", "overdue", "assignee"))
    gets += auth_cases(TASKS, b"/api/tasks")
    gets += [Case(TASKS, f"assignee {name}", b"/api/tasks?assignee=" + value) for name, value in {
        "someone": b"you", "me twice": b"meme", "19 digits": b"9" * 19, "spaces": b"%201", "upper": b"ME"}.items()]
    gets += [Case(TASKS, f"overdue {name}", b"/api/tasks?overdue=" + value) for name, value in {
        "maybe": b"maybe", "2": b"2", "list": b"%5B%5D"}.items()]
    journey = ("GET", "/console/journeys/{journey_id}")
    pages = [Case(journey, f"journey id {name}", b"/console/journeys/" + value, auth="none")
             for name, value in {"NUL": b"%00", "invalid utf-8": b"%FF"}.items()]
    # Well-formed bytes: signed out, the sign-in page (303) comes before the id is looked at.
    pages += [Case(journey, f"signed out, journey id {name}", b"/console/journeys/" + value, auth="none",
                   expect="ok") for name, value in {"dot-dot": b"..%2F..", "300 characters": b"a" * 300}.items()]
    for path in ("/console/tasks", "/console/tasks/board", "/console/journeys", "/console/journeys/welcome"):
        route, target = ("GET", path if "welcome" not in path else "/console/journeys/{journey_id}"), path.encode()
        pages += [Case(route, "htmx without a session", target, auth="none", headers=((b"HX-Request", b"true"),)),
                  Case(route, "forged session cookie", target, auth="none",
                       headers=((b"HX-Request", b"true"), (b"Cookie", b"lr_console=\xff" + b"a" * 500))),
                  Case(route, "signed out, junk query", target + b"?assignee=%00&x=%FF", auth="none", expect="ok")]
    pages = [replace(c, shape=False) for c in pages]
    return gets + heads(gets) + pages + heads(pages)
