"""The hostile corpus of segments and batch messages: ``GET|POST /api/segments``, ``POST /api/batches/preview``,
``POST /api/batches`` and ``GET /api/batches/{batch_id}`` (sdr_console/api/segments.py, batches.py). Every case
is a 4xx that writes nothing: no segment, batch, recipient or outbox row.

Hooked into tests/bot/web/test_hostile_corpus.py's ``CASES``.
"""

from __future__ import annotations

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
    batch_get = ("GET", "/api/batches/{batch_id}")
    gets = (query_cases(segments_get, SEGMENTS.encode(), ("limit", "offset")) + auth_cases(segments_get,
                                                                                          SEGMENTS.encode())
            + path_cases(batch_get, "/api/batches/{}") + query_cases(batch_get, b"/api/batches/1", ("after", "limit"))
            + auth_cases(batch_get, b"/api/batches/1"))
    return cases + gets + heads(gets)
