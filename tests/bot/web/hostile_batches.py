"""The hostile corpus of segments and batch messages: ``GET|POST /api/segments``, ``POST /api/batches/preview``,
``GET|POST /api/batches`` and ``GET /api/batches/{batch_id}`` (sdr_console/api/segments.py, batches.py), and the
console's 群发消息 pages (sdr_console/pages/batches.py, batch_compose.py: HTML, and the corpus is not signed in,
so no JSON shape). Every case is a 4xx that writes nothing: no segment, batch, recipient or outbox row.

Hooked into tests/bot/web/test_hostile_corpus.py's ``CASES``.
"""

from __future__ import annotations

from dataclasses import replace

from tests.bot.web.hostile_corpus import (
    SERVER_LIMIT,
    Case,
    auth_cases,
    body_cases,
    dumps,
    heads,
    json_cases,
    path_cases,
    query_cases,
)

SEGMENTS, BATCHES, PREVIEW = "/api/segments", "/api/batches", "/api/batches/preview"
VALID_BATCH = {"segment_id": 999_999, "text": "您好"}  # an unknown segment: a 404, whatever else is right


def batches_corpus() -> list[Case]:
    segment_bodies = {
        "name missing": {"query": ""}, "query missing": {"name": "x"}, "name empty": {"name": "", "query": ""},
        "name control characters": {"name": "\u0007\u0008", "query": ""}, "name 61": {"name": "名" * 61, "query": ""},
        "name a number": {"name": 1, "query": ""}, "query a number": {"name": "x", "query": 1},
        "query bad stage": {"name": "x", "query": "stage=nonsense"},
        "query bad score": {"name": "x", "query": {"ability_min": "1e3"}},
        "query nested": {"name": "x", "query": {"stage": [["mql"]]}},
        "query 2001 characters": {"name": "x", "query": "q=" + "x" * 2000},
        "unknown field": {"name": "x", "query": "", "owner": 1},
    }
    batch_bodies = {
        "segment missing": {"text": "hi"}, "text missing": {"segment_id": 1},
        "segment a string": {"segment_id": "1", "text": "hi"}, "segment true": {"segment_id": True, "text": "hi"},
        "segment 0": {"segment_id": 0, "text": "hi"}, "segment 2^63": {"segment_id": 2**63, "text": "hi"},
        "segment a float": {"segment_id": 1.5, "text": "hi"}, "text empty": {"segment_id": 1, "text": ""},
        "text 4001 characters": {"segment_id": 1, "text": "x" * 4001}, "text a list": {"segment_id": 1, "text": ["x"]},
        "text lone surrogate": {"segment_id": 1, "text": "\udfff"},
        "channels empty": {**VALID_BATCH, "channels": []}, "channels unknown": {**VALID_BATCH, "channels": ["sms"]},
        "content_id empty": {**VALID_BATCH, "content_id": ""},
        "miniprogram incomplete": {**VALID_BATCH, "miniprogram": {"title": "t"}},
        "unknown field": {**VALID_BATCH, "send_at": "now"}, "unknown segment": VALID_BATCH,
    }
    cases: list[Case] = []
    segments_post, segments_get = ("POST", SEGMENTS), ("GET", SEGMENTS)
    cases += (body_cases(segments_post, SEGMENTS.encode(), SERVER_LIMIT)
              + json_cases(segments_post, SEGMENTS.encode(), segment_bodies)
              + auth_cases(segments_post, SEGMENTS.encode(), dumps({"name": "x", "query": ""})))
    for path in (PREVIEW, BATCHES):
        route = ("POST", path)
        cases += (body_cases(route, path.encode(), SERVER_LIMIT) + json_cases(route, path.encode(), batch_bodies)
                  + auth_cases(route, path.encode(), dumps(VALID_BATCH)))
    batch_get, batch_list = ("GET", "/api/batches/{batch_id}"), ("GET", BATCHES)
    gets = (query_cases(segments_get, SEGMENTS.encode(), ("limit", "offset")) + auth_cases(segments_get,
                                                                                          SEGMENTS.encode())
            + path_cases(batch_get, "/api/batches/{}") + query_cases(batch_get, b"/api/batches/1", ("after", "limit"))
            + auth_cases(batch_get, b"/api/batches/1")
            + query_cases(batch_list, BATCHES.encode(), ("limit", "before")) + auth_cases(batch_list, BATCHES.encode()))
    return cases + gets + heads(gets) + console_cases()


def console_cases() -> list[Case]:
    """The pages: signed out, a GET is the sign-in redirect and an htmx request a 401; every POST lacks the CSRF
    token (a 403 page)."""
    form = b"application/x-www-form-urlencoded"
    pages: list[Case] = []
    for route, target in ((("GET", "/console/batches"), b"/console/batches"),
                          (("GET", "/console/batches/new"), b"/console/batches/new"),
                          (("GET", "/console/batches/{batch_id}"), b"/console/batches/1")):
        pages += [Case(route, "htmx without a session", target, auth="none", headers=((b"HX-Request", b"true"),)),
                  Case(route, "forged session cookie", target, auth="none",
                       headers=((b"HX-Request", b"true"), (b"Cookie", b"lr_console=\xff" + b"a" * 500))),
                  Case(route, "signed out, junk query", target + b"?before=%00&after=%FF", auth="none",
                       expect="ok")]
    batch_page = ("GET", "/console/batches/{batch_id}")
    pages += [Case(batch_page, f"batch id {name}", b"/console/batches/" + value, auth="none")
              for name, value in {"NUL": b"%00", "invalid utf-8": b"%FF"}.items()]
    post = ("POST", "/console/batches/new")
    valid = b"segment_id=1&text=hi&channels=wecom&action=send"
    pages += [Case(post, "no token", b"/console/batches/new", valid, form, auth="none"),
              Case(post, "forged token", b"/console/batches/new", valid + b"&csrf_token=AAAA", form, auth="none"),
              Case(post, "invalid utf-8 body", b"/console/batches/new", b"text=\xff\xfe&csrf_token=\xff", form,
                   auth="none"),
              Case(post, "JSON body", b"/console/batches/new", dumps({"segment_id": 1, "text": "hi"}), auth="none"),
              Case(post, "huge body", b"/console/batches/new", b"text=" + b"x" * (SERVER_LIMIT + 1), form,
                   auth="none"),
              Case(post, "forged CSRF header", b"/console/batches/new", valid, form, auth="none",
                   headers=((b"X-CSRF-Token", b"\xfforged"),))]
    pages = [replace(c, shape=False) for c in pages]
    return pages + heads([c for c in pages if c.route[0] == "GET"])
