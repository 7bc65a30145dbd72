"""The hostile corpus: what an attacker or a broken client sends to each endpoint of the app.

Every case names the route it covers, as ``(method, canonical path)`` of ``app.router.routes()``;
test_hostile_corpus.py fails when a route of the app has no case here. Targets and bodies are raw bytes
(sent over a plain socket, so invalid UTF-8 and bad percent-encoding reach the server as written);
``{lead}`` in a target is the seeded lead's id. Every case is malformed: it must get a 4xx ("4xx") or, where
the input is harmless and simply ignored, any answer below 500 ("ok"), and must change no row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

KIB = 1024
SERVER_LIMIT = 64 * KIB  # server.max_body_bytes's default
STAGE_LIMIT = 16 * KIB  # sdr_console/api/scores.py MAX_BODY
CONTENT_LIMIT = 8 * 1024 * KIB  # sdr_console/api/capture.py MAX_CONTENT_BODY
JSON = b"application/json"


@dataclass(frozen=True)
class Case:
    route: tuple[str, str]  # (method, canonical path) this case covers
    name: str
    target: bytes
    body: bytes = b""
    content_type: bytes | None = JSON
    auth: str = "api"  # "api": the console token, "mp": the seeded mini-program session, "none"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    chunked: bool = False
    expect: str = "4xx"  # or "ok": any answer below 500
    shape: bool = True  # a 4xx on /api/ carries the one JSON error shape

    @property
    def method(self) -> str:
        return self.route[0]

    @property
    def label(self) -> str:
        return f"{self.route[0]} {self.route[1]} [{self.name}]"


def dumps(obj: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, exactly as a client's JSON.stringify sends them.
    return json.dumps(obj, ensure_ascii=True).encode()


def generic_bodies(limit: int) -> list[tuple[str, bytes, bytes | None, bool]]:
    """(name, body, content type, chunked): bodies no JSON endpoint may accept."""
    huge = b'{"a":"' + b"x" * (limit + 1) + b'"}'
    return [
        ("empty body", b"", JSON, False),
        ("not json", b"not json", JSON, False),
        ("truncated", b'{"a":', JSON, False),
        ("trailing garbage", b"{} x", JSON, False),
        ("array", b"[]", JSON, False),
        ("string", b'"x"', JSON, False),
        ("null", b"null", JSON, False),
        ("number", b"1", JSON, False),
        ("10000 nested arrays", b"[" * 10000 + b"]" * 10000, JSON, False),
        ("10000 nested objects", b'{"a":' * 10000 + b"1" + b"}" * 10000, JSON, False),
        ("33 levels", b'{"a":' + b"[" * 32 + b"]" * 32 + b"}", JSON, False),
        ("50000 unclosed", b"[" * 50000, JSON, False),
        ("invalid utf-8", b'{"a":"\xff\xfe"}', JSON, False),
        ("overlong utf-8", b'{"a":"\xc0\xaf"}', JSON, False),
        ("encoded surrogate", b'{"a":"\xed\xa0\x80"}', JSON, False),
        ("utf-16", '{"a":"b"}'.encode("utf-16"), JSON, False),
        ("utf-8 bom", b"\xef\xbb\xbf{}", JSON, False),
        ("latin-1 declared", '{"a":"é"}'.encode("latin-1"), b"application/json; charset=latin-1", False),
        ("NUL escape", b'{"a":"\\u0000"}', JSON, False),
        ("NUL in a key", b'{"\\u0000":1}', JSON, False),
        ("raw NUL", b'{"a":"\x00"}', JSON, False),
        ("lone surrogate", b'{"a":"\\ud800"}', JSON, False),
        ("lone low surrogate key", b'{"\\udc00":1}', JSON, False),
        ("NaN", b'{"a":NaN}', JSON, False),
        ("-Infinity", b'{"a":-Infinity}', JSON, False),
        ("1e999", b'{"a":1e999}', JSON, False),
        ("5000-digit integer", b'{"a":' + b"9" * 5000 + b"}", JSON, False),
        ("2^64", b'{"a":18446744073709551616}', JSON, False),
        ("duplicate keys", b'{"a":1,"a":2}', JSON, False),
        ("huge body", huge, JSON, False),
        ("huge chunked body", huge, JSON, True),
        ("form-encoded", b"a=1&b=2", b"application/x-www-form-urlencoded", False),
        ("multipart", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
         b"multipart/form-data; boundary=x", False),
        ("xml", b"<xml><a>1</a></xml>", b"text/xml", False),
    ]


def body_cases(route: tuple[str, str], target: bytes, limit: int, auth: str = "api") -> list[Case]:
    return [Case(route, name, target, body, ctype, auth=auth, chunked=chunked)
            for name, body, ctype, chunked in generic_bodies(limit)]


def json_cases(route: tuple[str, str], target: bytes, bodies: dict[str, Any], auth: str = "api") -> list[Case]:
    return [Case(route, name, target, dumps(body), auth=auth) for name, body in bodies.items()]


AUTH_HEADERS: dict[str, bytes | None] = {
    "no Authorization": None,
    "scheme only": b"Bearer",
    "Basic": b"Basic dGVzdDp0ZXN0",
    "wrong token": b"Bearer wrong-token",
    "UTF-8 token": "Bearer 令牌".encode(),
    "invalid UTF-8 token": b"Bearer \xff\xfe",
    "token with NUL-like escape": b"Bearer test-api-token%00",
    "two tokens": b"Bearer test-api-token test-api-token",
    "600-character token": b"Bearer " + b"a" * 600,
}


def auth_cases(route: tuple[str, str], target: bytes, body: bytes = b"") -> list[Case]:
    cases = []
    for name, value in AUTH_HEADERS.items():
        headers = () if value is None else ((b"Authorization", value),)
        cases.append(Case(route, f"auth: {name}", target, body, auth="none", headers=headers))
    return cases


# Digits that str.isdigit() or int() take but an id or a number in a query must not: superscript, Arabic-Indic,
# fullwidth (raw and percent-encoded).
UNICODE_DIGITS: dict[str, bytes] = {
    "superscript two": "²".encode(),
    "encoded superscript": b"%C2%B2",
    "arabic-indic three": b"%D9%A3",
    "fullwidth one": b"%EF%BC%91",
}
QUERY_VALUES: dict[str, bytes] = {
    **UNICODE_DIGITS,
    "negative": b"-1",
    "decimal": b"1.0",
    "exponent": b"1e3",
    "2^64": b"18446744073709551616",
    "40 digits": b"9" * 40,
    "encoded NUL": b"%00",
    "invalid utf-8": b"%FF",
    "encoded surrogate": b"%ED%A0%80",
    "truncated utf-8": b"%E4%B8",
    "raw invalid utf-8": b"\xff",
}
# Raw (not percent-encoded) non-ASCII bytes in the request line are refused by aiohttp's HTTP parser, before any
# middleware: a plain-text 400, not the JSON shape.
RAW = ("superscript two", "raw invalid utf-8")


def query_cases(route: tuple[str, str], path: bytes, params: tuple[str, ...]) -> list[Case]:
    cases = [Case(route, f"{p}={name}", path + b"?" + p.encode() + b"=" + value, auth="api", shape=name not in RAW)
             for p in params for name, value in QUERY_VALUES.items()]
    ignored = {
        "bad percent-escape": b"?%zz=%",
        "empty keys": b"?=&=&&",
        "repeated parameter": b"?limit=1&limit=%C2%B2",
        "5000-character unknown parameter": b"?x=" + b"y" * 5000,
        "CRLF in a parameter": b"?x=%0D%0ASet-Cookie:%20injected=1",
    }
    cases += [Case(route, name, path + q, expect="ok") for name, q in ignored.items()]
    return cases


LEAD_IDS: dict[str, bytes] = {
    **UNICODE_DIGITS,
    "zero": b"0",
    "negative": b"-1",
    "decimal": b"1.0",
    "unknown": b"99999",
    "18 digits": b"9" * 18,
    "2^63": b"9223372036854775808",
    "2^64": b"18446744073709551616",
    "encoded NUL": b"%00",
    "invalid utf-8": b"%FF",
    "spaces": b"%201%20",
    "dot-dot": b"..",
}


def path_cases(route: tuple[str, str], template: str, body: bytes = b"") -> list[Case]:
    """``template`` has one ``{}`` for the id."""
    head, tail = template.encode().split(b"{}")
    return [Case(route, f"id {name}", head + value + tail, body, shape=name not in RAW)
            for name, value in LEAD_IDS.items()]


def heads(cases: list[Case], per_route: int = 6) -> list[Case]:
    """HEAD variants of GET cases (aiohttp adds a HEAD route for every GET): the first few of each route."""
    out: list[Case] = []
    seen: dict[tuple[str, str], int] = {}
    for case in cases:
        if case.method != "GET" or seen.get(case.route, 0) >= per_route:
            continue
        seen[case.route] = seen.get(case.route, 0) + 1
        out.append(replace(case, route=("HEAD", case.route[1]), name=f"HEAD {case.name}"))
    return out


VALID_ITEM = {"id": "hostile-ok", "kind": "article", "title": "标题", "url": "https://example.com/a"}
BAD_URLS = {
    "no host": "https://",
    "backslash host": "https://\\\\evil.example",
    "empty authority": "https:///x",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "http": "http://example.com/a",
    "protocol-relative": "//example.com/a",
    "leading space": " https://example.com/a",
    "newline": "https://example.com/a\nb",
    "credentials": "https://user:pass@example.com/a",
    "user only": "https://user@example.com/a",
    "bad port": "https://example.com:99999/a",
    "single label": "https://localhost/a",
    "empty label": "https://example..com/a",
    "NUL": "https://example.com/\u0000",
    "relative": "/a",
    "1001 characters": "https://example.com/" + "a" * 981,
}


def content_cases() -> list[Case]:
    route, target = ("PUT", "/api/content"), b"/api/content"
    item_bodies: dict[str, Any] = {
        'replace_all "false"': {"items": [VALID_ITEM], "replace_all": "false"},
        "replace_all 0": {"items": [VALID_ITEM], "replace_all": 0},
        "replace_all null": {"items": [VALID_ITEM], "replace_all": None},
        "replace_all []": {"items": [], "replace_all": []},
        "unknown top-level key": {"items": [VALID_ITEM], "replace": True},
        "items missing": {"replace_all": True},
        "items an object": {"items": VALID_ITEM},
        "items a string": {"items": "x"},
        "item a string": {"items": ["x"]},
        "item null": {"items": [None]},
        "2001 items": {"items": [{**VALID_ITEM, "id": f"i{n}"} for n in range(2001)]},
        "duplicate ids": {"items": [VALID_ITEM, VALID_ITEM]},
        "unknown item key": {"items": [{**VALID_ITEM, "extra": 1}]},
        "id missing": {"items": [{k: v for k, v in VALID_ITEM.items() if k != "id"}]},
        "id uppercase": {"items": [{**VALID_ITEM, "id": "Bad"}]},
        "id 65 characters": {"items": [{**VALID_ITEM, "id": "a" * 65}]},
        "id an integer": {"items": [{**VALID_ITEM, "id": 1}]},
        "kind unknown": {"items": [{**VALID_ITEM, "kind": "podcast"}]},
        "stage unknown": {"items": [{**VALID_ITEM, "stage": "buying"}]},
        "title empty": {"items": [{**VALID_ITEM, "title": " "}]},
        "title 201 characters": {"items": [{**VALID_ITEM, "title": "标" * 201}]},
        "title an integer": {"items": [{**VALID_ITEM, "title": 5}]},
        "title NUL": {"items": [{**VALID_ITEM, "title": "a\u0000b"}]},
        "title lone surrogate": {"items": [{**VALID_ITEM, "title": "a\ud800"}]},
        "summary 2001 characters": {"items": [{**VALID_ITEM, "summary": "x" * 2001}]},
        "summary a list": {"items": [{**VALID_ITEM, "summary": ["x"]}]},
        "key a string": {"items": [{**VALID_ITEM, "key": "true"}]},
        "key 1": {"items": [{**VALID_ITEM, "key": 1}]},
        "tags a string": {"items": [{**VALID_ITEM, "tags": "hr"}]},
        "tags with an integer": {"items": [{**VALID_ITEM, "tags": ["hr", 1]}]},
        "21 tags": {"items": [{**VALID_ITEM, "tags": [f"t{n}" for n in range(21)]}]},
        "tag 101 characters": {"items": [{**VALID_ITEM, "tags": ["t" * 101]}]},
        "empty tag": {"items": [{**VALID_ITEM, "tags": [""]}]},
        "url missing": {"items": [{k: v for k, v in VALID_ITEM.items() if k != "url"}]},
        "url an integer": {"items": [{**VALID_ITEM, "url": 1}]},
        "cover 501 characters": {"items": [{**VALID_ITEM, "cover": "https://example.com/" + "c" * 481}]},
        "cover an object": {"items": [{**VALID_ITEM, "cover": {}}]},
    }
    for name, url in BAD_URLS.items():
        item_bodies[f"url {name}"] = {"items": [{**VALID_ITEM, "url": url}]}
        item_bodies[f"cover {name}"] = {"items": [{**VALID_ITEM, "cover": url}]}
    return (body_cases(route, target, CONTENT_LIMIT) + json_cases(route, target, item_bodies)
            + auth_cases(route, target, dumps({"items": [VALID_ITEM]})))


VALID_STAGE = {"to": "mql", "actor": "sdr", "reason": "hostile corpus"}


def stage_cases() -> list[Case]:
    route, target = ("POST", "/api/leads/{lead_id}/stage"), b"/api/leads/{lead}/stage"
    bodies = {
        "to unknown": {**VALID_STAGE, "to": "won"},
        "to an integer": {**VALID_STAGE, "to": 1},
        "to missing": {k: v for k, v in VALID_STAGE.items() if k != "to"},
        "actor system": {**VALID_STAGE, "actor": "system"},
        "actor a list": {**VALID_STAGE, "actor": ["sdr"]},
        "actor_id 101 characters": {**VALID_STAGE, "actor_id": "a" * 101},
        "actor_id an integer": {**VALID_STAGE, "actor_id": 7},
        "actor_id NUL": {**VALID_STAGE, "actor_id": "\u0000"},
        "reason blank": {**VALID_STAGE, "reason": "  "},
        "reason 2001 characters": {**VALID_STAGE, "reason": "理" * 2001},
        "reason NUL": {**VALID_STAGE, "reason": "a\u0000"},
        "reason lone surrogate": {**VALID_STAGE, "reason": "\udfff"},
        "reason an object": {**VALID_STAGE, "reason": {"a": 1}},
        "actor_id naming someone else": {**VALID_STAGE, "actor_id": "boss"},  # the token says who acts
        "actor unknown": {**VALID_STAGE, "actor": "ceo"},
    }
    return (body_cases(route, target, STAGE_LIMIT) + json_cases(route, target, bodies)
            + path_cases(route, "/api/leads/{}/stage", dumps(VALID_STAGE))
            + auth_cases(route, target, dumps(VALID_STAGE)))


VALID_FIELDS = {"name": "王芳", "phone": "13700001111", "company": "杭州某某网络"}
VALID_MP = {"fields": VALID_FIELDS, "consent": True}
MP_FORM = ("POST", "/api/mp/forms/{form_id}")


def mp_submit_cases() -> list[Case]:
    target = b"/api/mp/forms/demo"
    bad_fields = {
        "fields a list": [VALID_FIELDS],
        "fields a string": "name=王芳",
        "fields null": None,
        "name an integer": {**VALID_FIELDS, "name": 5},
        "name a list": {**VALID_FIELDS, "name": ["王芳"]},
        "name an object": {**VALID_FIELDS, "name": {"a": "b"}},
        "name true": {**VALID_FIELDS, "name": True},
        "name 51 characters": {**VALID_FIELDS, "name": "王" * 51},
        "name NUL": {**VALID_FIELDS, "name": "王\u0000芳"},
        "name lone surrogate": {**VALID_FIELDS, "name": "\ud83d"},
        "company 101 characters": {**VALID_FIELDS, "company": "公" * 101},
        "phone arabic-indic digits": {**VALID_FIELDS, "phone": "١٣٧٠٠٠٠١١١١"},
        "phone 2^64": {**VALID_FIELDS, "phone": 18446744073709551616},
        "phone too short": {**VALID_FIELDS, "phone": "1370000"},
        "email 255 characters": {**VALID_FIELDS, "email": "a" * 64 + "@" + "b" * 186 + ".com"},
        "email without domain": {**VALID_FIELDS, "email": "a@"},
        "email with NUL": {**VALID_FIELDS, "email": "a\u0000@example.com"},
        "job_title unknown": {**VALID_FIELDS, "job_title": "ceo"},
        "company_size a number": {**VALID_FIELDS, "company_size": 500},
        "required name missing": {k: v for k, v in VALID_FIELDS.items() if k != "name"},
    }
    bodies: dict[str, Any] = {name: {**VALID_MP, "fields": f} for name, f in bad_fields.items()}
    bodies |= {
        'consent "true"': {**VALID_MP, "consent": "true"},
        "consent 1": {**VALID_MP, "consent": 1},
        "consent missing": {"fields": VALID_FIELDS},
        "phone_code an integer": {**VALID_MP, "phone_code": 5},
        "phone_code 257 characters": {**VALID_MP, "phone_code": "c" * 257},
        "phone_code unknown": {**VALID_MP, "phone_code": "not-a-code"},
        "phone_code NUL": {**VALID_MP, "phone_code": "\u0000"},
        "src NUL": {**VALID_MP, "src": "expo\u00002026"},
        "utm_source lone surrogate": {**VALID_MP, "utm_source": "\udc80"},
        "idempotency_key an integer": {**VALID_MP, "idempotency_key": 42},
        "idempotency_key empty": {**VALID_MP, "idempotency_key": ""},
        "idempotency_key 129 characters": {**VALID_MP, "idempotency_key": "k" * 129},
        "idempotency_key non-ASCII": {**VALID_MP, "idempotency_key": "键"},
        "idempotency_key with a space": {**VALID_MP, "idempotency_key": "a b"},
    }
    cases = body_cases(MP_FORM, target, SERVER_LIMIT, auth="mp") + json_cases(MP_FORM, target, bodies, auth="mp")
    valid = dumps(VALID_MP)
    cases += [
        Case(MP_FORM, "Idempotency-Key header non-ASCII", target, valid, auth="mp",
             headers=((b"Idempotency-Key", "键".encode()),)),
        Case(MP_FORM, "Idempotency-Key header invalid UTF-8", target, valid, auth="mp",
             headers=((b"Idempotency-Key", b"\xff"),)),
        Case(MP_FORM, "Idempotency-Key header and field differ", target,
             dumps({**VALID_MP, "idempotency_key": "a"}), auth="mp", headers=((b"Idempotency-Key", b"b"),)),
        Case(MP_FORM, "unknown form", b"/api/mp/forms/nope", valid, auth="mp"),
        Case(MP_FORM, "form id NUL", b"/api/mp/forms/demo%00", valid, auth="mp"),
        Case(MP_FORM, "form id invalid utf-8", b"/api/mp/forms/%FF", valid, auth="mp"),
        Case(MP_FORM, "form id 5000 characters", b"/api/mp/forms/" + b"d" * 5000, valid, auth="mp"),
    ]
    return cases + mp_auth_cases(MP_FORM, target, valid)


def mp_auth_cases(route: tuple[str, str], target: bytes, body: bytes = b"") -> list[Case]:
    cases = []
    for name, value in {**AUTH_HEADERS, "unknown session": b"Bearer " + b"A" * 43}.items():
        headers = () if value is None else ((b"Authorization", value),)
        cases.append(Case(route, f"auth: {name}", target, body, auth="none", headers=headers))
    return cases


def mp_login_cases() -> list[Case]:
    route, target = ("POST", "/api/mp/login"), b"/api/mp/login"
    bodies = {
        "code missing": {},
        "code an integer": {"code": 1},
        "code empty": {"code": ""},
        "code 257 characters": {"code": "c" * 257},
        "code a list": {"code": ["a"]},
        "code NUL": {"code": "a\u0000b"},
        "code lone surrogate": {"code": "\ud800"},
        "code unknown": {"code": "never-issued"},
    }
    spoofed = ((b"X-Forwarded-For", b"\xff, 999.1.1.1, ::::, <script>"), (b"X-Real-IP", b"not-an-ip"))
    return (body_cases(route, target, SERVER_LIMIT, auth="none") + json_cases(route, target, bodies, auth="none")
            + [Case(route, "spoofed client IP headers", target, dumps({"code": "never-issued"}), auth="none",
                    headers=spoofed)])


def page_cases() -> list[Case]:
    """The H5 form and tracked links answer HTML or redirects: no JSON shape, but never a 5xx."""
    show, submit = ("GET", "/f/{form_id}"), ("POST", "/f/{form_id}")
    form = b"application/x-www-form-urlencoded"
    cases = [
        Case(show, "unknown form", b"/f/nope", auth="none"),
        Case(show, "form id NUL", b"/f/demo%00", auth="none"),
        Case(show, "form id invalid utf-8", b"/f/%FF", auth="none"),
        Case(show, "src NUL", b"/f/demo?src=%00", auth="none"),
        Case(show, "src invalid utf-8", b"/f/demo?src=%FF", auth="none"),
        Case(show, "CRLF in src", b"/f/demo?src=%0D%0ASet-Cookie:%20injected=1", auth="none", expect="ok"),
        Case(show, "5000-character src", b"/f/demo?src=" + b"s" * 5000, auth="none", expect="ok"),
        Case(show, "spoofed client IP", b"/f/demo", auth="none", expect="ok",
             headers=((b"X-Forwarded-For", b"\xff, 999.1.1.1"),)),
        Case(show, "forged cookie", b"/f/demo", auth="none", expect="ok",
             headers=((b"Cookie", b"lr_form=\xff\x00garbage"),)),
        Case(submit, "no session", b"/f/demo", b"name=x&phone=13700001111", form, auth="none"),
        Case(submit, "invalid utf-8 body", b"/f/demo", b"name=\xff\xfe&phone=1", form, auth="none"),
        Case(submit, "unknown charset", b"/f/demo", b"name=x", b"application/x-www-form-urlencoded; charset=nope",
             auth="none"),
        Case(submit, "utf-16 declared", b"/f/demo", "name=x".encode("utf-16"),
             b"application/x-www-form-urlencoded; charset=utf-16", auth="none"),
        Case(submit, "broken multipart", b"/f/demo", b"--x\r\nnonsense", b"multipart/form-data; boundary=x",
             auth="none"),
        Case(submit, "multipart without boundary", b"/f/demo", b"a", b"multipart/form-data", auth="none"),
        Case(submit, "NUL and surrogate escapes", b"/f/demo", b"name=%00&company=%ED%A0%80", form, auth="none"),
        Case(submit, "huge body", b"/f/demo", b"name=" + b"x" * (SERVER_LIMIT + 1), form, auth="none"),
        Case(submit, "huge chunked body", b"/f/demo", b"name=" + b"x" * (SERVER_LIMIT + 1), form, auth="none",
             chunked=True),
        Case(submit, "JSON body", b"/f/demo", dumps(VALID_MP), auth="none"),
        Case(submit, "unknown form", b"/f/nope", b"name=x", form, auth="none"),
        Case(submit, "forged cookie", b"/f/demo", b"csrf=x&name=x", form, auth="none",
             headers=((b"Cookie", b"lr_form=eyJhIjoxfQ.forged"),)),
    ]
    link = ("GET", "/c/{token}")
    for name, token in {"garbage": b"garbage", "NUL": b"%00", "invalid utf-8": b"%FF",
                        "5000 characters": b"A" * 5000, "base64 JSON": b"eyJyIjoib2FfMSJ9.AAAA",
                        "dots": b"a.b.c.d", "unicode digits": b"%C2%B2"}.items():
        cases.append(Case(link, f"token {name}", b"/c/" + token, auth="none"))
    cases.append(Case(link, "spoofed client IP", b"/c/garbage", auth="none",
                      headers=((b"X-Forwarded-For", b"\xff, ::::"),)))
    return [replace(c, shape=False) for c in cases]


def console_get_cases() -> list[Case]:
    cases: list[Case] = []
    lists = {"/api/leads": ("limit", "offset", "stage", "owner", "team", "created_to", "sort"),
             "/api/handoffs": ("limit", "offset", "status", "mine"),
             "/api/outbox": ("limit", "offset", "status", "method", "lead_id"),
             "/api/duplicates": ("limit", "offset", "status")}
    for path, params in lists.items():
        route = ("GET", path)
        cases += query_cases(route, path.encode(), params) + auth_cases(route, path.encode())
        if path == "/api/leads":
            cases += [Case(route, f"q={name}", b"/api/leads?q=" + value)
                      for name, value in {"NUL": b"%00", "invalid utf-8": b"%FF",
                                          "encoded surrogate": b"%ED%A0%80"}.items()]
            cases.append(Case(route, "q 2000 characters", b"/api/leads?q=" + b"%25" * 2000, expect="ok"))
    content = ("GET", "/api/content")
    cases += [Case(content, "unknown parameters", b"/api/content?limit=%C2%B2&x=1", expect="ok"),
              Case(content, "NUL in the query", b"/api/content?x=%00")] + auth_cases(content, b"/api/content")
    for suffix in ("", "/score", "/stages"):
        route = ("GET", "/api/leads/{lead_id}" + suffix)
        cases += path_cases(route, "/api/leads/{}" + suffix)
        cases += auth_cases(route, f"/api/leads/{{lead}}{suffix}".encode())
    health = ("GET", "/healthz")
    cases += [Case(health, "junk query", b"/healthz?x=%FF%00", auth="none"),
              Case(health, "a body on GET", b"/healthz", b"x" * (SERVER_LIMIT + 1), auth="none")]
    for route in (("GET", "/api/openapi.json"), ("GET", "/api/docs")):  # public: the API's description only
        target = route[1].encode()
        cases += [Case(route, "junk query", target + b"?x=%FF%00", auth="none"),
                  Case(route, "a body on GET", target, b"x" * (SERVER_LIMIT + 1), auth="none"),
                  Case(route, "forged session cookie", target + b"?x=1", auth="none", expect="ok",
                       headers=((b"Cookie", b"lr_console=\xff" + b"a" * 500),))]
    return cases


def console_post_cases() -> list[Case]:
    cases: list[Case] = []
    erase = ("POST", "/api/leads/{lead_id}/erase")
    cases += path_cases(erase, "/api/leads/{}/erase") + auth_cases(erase, b"/api/leads/{lead}/erase")
    cases += [Case(erase, "junk body, unknown id", b"/api/leads/99999/erase", b'{"a":"\\u0000"}')]
    for action in ("merge", "dismiss"):
        route = ("POST", f"/api/duplicates/{{suggestion_id}}/{action}")
        cases += path_cases(route, f"/api/duplicates/{{}}/{action}", b"[" * 10000)
        cases += auth_cases(route, f"/api/duplicates/1/{action}".encode())
    return cases


def console_page_cases() -> list[Case]:
    """The console's pages answer HTML or redirects. Nobody is signed in: every POST lacks a valid CSRF token."""
    root, start, static = ("GET", "/"), ("GET", "/console/"), ("GET", "/console/static/{path}")
    login_page, login, logout = ("GET", "/console/login"), ("POST", "/console/login"), ("POST", "/console/logout")
    form = b"application/x-www-form-urlencoded"
    cases = [
        Case(root, "invalid utf-8 query", b"/?x=%FF", auth="none"),
        Case(root, "NUL in the query", b"/?x=%00", auth="none"),
        Case(("GET", "/console"), "invalid utf-8 query", b"/console?x=%FF", auth="none"),
        Case(start, "invalid utf-8 query", b"/console/?x=%FF", auth="none"),
        Case(start, "forged session cookie", b"/console/?x=%00", auth="none",
             headers=((b"Cookie", b"lr_console=\xff" + b"a" * 500),)),
        Case(start, "a session cookie without a session", b"/console/", auth="none", expect="ok",
             headers=((b"Cookie", b"lr_console=" + b"A" * 43),)),
        Case(login_page, "next elsewhere", b"/console/login?next=%2F%2Fevil.example.com", auth="none", expect="ok"),
        Case(login_page, "next NUL", b"/console/login?next=%00", auth="none"),
        Case(login_page, "CRLF in next", b"/console/login?next=%2Fconsole%2F%0D%0ASet-Cookie:%20injected=1",
             auth="none", expect="ok"),
        Case(login_page, "forged login cookie", b"/console/login", auth="none", expect="ok",
             headers=((b"Cookie", b"lr_console_login=\xff" + b"z" * 300),)),
        Case(static, "traversal", b"/console/static/../../pyproject.toml", auth="none"),
        Case(static, "encoded traversal", b"/console/static/%2e%2e/%2e%2e/pyproject.toml", auth="none"),
        Case(static, "outside the allow-list", b"/console/static/vendor/bootstrap/package.json", auth="none"),
        Case(static, "NUL", b"/console/static/console.css%00", auth="none"),
        Case(static, "invalid utf-8", b"/console/static/%FF", auth="none"),
    ]
    bodies = {
        "no token": (b"username=a&password=b", form),
        "forged token": (b"username=a&password=b&csrf_token=AAAA", form),
        "invalid utf-8 body": (b"username=\xff\xfe&password=\xff&csrf_token=\xff", form),
        "unknown charset": (b"username=a", b"application/x-www-form-urlencoded; charset=nope"),
        "utf-16 declared": ("username=a".encode("utf-16"), b"application/x-www-form-urlencoded; charset=utf-16"),
        "broken multipart": (b"--x\r\nnonsense", b"multipart/form-data; boundary=x"),
        "multipart without boundary": (b"a", b"multipart/form-data"),
        "NUL and surrogate escapes": (b"username=%00&password=%ED%A0%80&csrf_token=%00", form),
        "huge body": (b"username=" + b"x" * (SERVER_LIMIT + 1), form),
        "JSON body": (dumps({"username": "a", "password": "b"}), JSON),
    }
    for route, target in ((login, b"/console/login"), (logout, b"/console/logout")):
        cases += [Case(route, name, target, body, ctype, auth="none") for name, (body, ctype) in bodies.items()]
        cases += [Case(route, "forged CSRF header", target, b"", None, auth="none",
                       headers=((b"X-CSRF-Token", b"\xfforged"),)),
                  Case(route, "huge chunked body", target, b"username=" + b"x" * (SERVER_LIMIT + 1), form,
                       auth="none", chunked=True)]
    return [replace(c, shape=False) for c in cases]


PEOPLE_LIMIT = 16 * KIB  # sdr_console/api/people.py MAX_BODY
VALID_USER = {"username": "hostile", "role": "sdr", "password": "long enough password"}
VALID_MEMBER = {"username": "nobody-here", "capacity": 1}


def people_cases() -> list[Case]:
    """Users, teams and the audit log (sdr_console/api/people.py)."""
    users, teams, audit = ("GET", "/api/users"), ("GET", "/api/teams"), ("GET", "/api/audit")
    gets = (query_cases(users, b"/api/users", ("limit", "offset")) + auth_cases(users, b"/api/users")
            + query_cases(audit, b"/api/audit", ("limit", "offset", "actor_user_id", "outcome"))
            + auth_cases(audit, b"/api/audit")
            + [Case(audit, f"{p} {name}", b"/api/audit?" + p.encode() + b"=" + value)
               for p in ("action", "target_kind", "target_id")
               for name, value in {"NUL": b"%00", "invalid utf-8": b"%FF", "too long": b"a" * 65}.items()]
            + [Case(teams, "junk query", b"/api/teams?x=%FF%00", expect="ok")] + auth_cases(teams, b"/api/teams"))
    add_user, add_team = ("POST", "/api/users"), ("POST", "/api/teams")
    user_bodies = {
        "username missing": {"role": "sdr"},
        "username with a space": {**VALID_USER, "username": "a b"},
        "username 65 characters": {**VALID_USER, "username": "a" * 65},
        "username Chinese": {**VALID_USER, "username": "王芳"},
        "username NUL": {**VALID_USER, "username": "a\u0000"},
        "username an integer": {**VALID_USER, "username": 7},
        "role unknown": {**VALID_USER, "role": "king"},
        "role a list": {**VALID_USER, "role": ["admin"]},
        "password short": {**VALID_USER, "password": "short"},
        "password 257 characters": {**VALID_USER, "password": "p" * 257},
        "password NUL": {**VALID_USER, "password": "long enough\u0000password"},
        "password null": {**VALID_USER, "password": None},
        "display_name 101 characters": {**VALID_USER, "display_name": "名" * 101},
        "display_name blank": {**VALID_USER, "display_name": "  "},
        "wecom_userid an object": {**VALID_USER, "wecom_userid": {"a": 1}},
        "team 65 characters": {**VALID_USER, "team": "t" * 65},
        "team lone surrogate": {**VALID_USER, "team": "\udfff"},
    }
    team_bodies = {
        "name missing": {},
        "name blank": {"name": " "},
        "name 65 characters": {"name": "t" * 65},
        "name NUL": {"name": "\u0000"},
        "members not a list": {"name": "t1", "members": {"username": "x"}},
        "member a string": {"name": "t1", "members": ["x"]},
        "member unknown": {"name": "t1", "members": [VALID_MEMBER]},
        "501 members": {"name": "t1", "members": [VALID_MEMBER] * 501},
    }
    member_bodies = {
        "username unknown": VALID_MEMBER,
        "capacity negative": {**VALID_MEMBER, "capacity": -1},
        "capacity a float": {**VALID_MEMBER, "capacity": 1.5},
        "capacity true": {**VALID_MEMBER, "capacity": True},
        "capacity 2^64": {**VALID_MEMBER, "capacity": 2**64},
        "away a string": {**VALID_MEMBER, "away": "yes"},
        "remove a number": {**VALID_MEMBER, "remove": 1},
        "username missing": {"capacity": 1},
    }
    member, disable = ("POST", "/api/teams/{team_id}/members"), ("POST", "/api/users/{user_id}/disable")
    posts = (body_cases(add_user, b"/api/users", PEOPLE_LIMIT) + json_cases(add_user, b"/api/users", user_bodies)
             + auth_cases(add_user, b"/api/users", dumps(VALID_USER))
             + body_cases(add_team, b"/api/teams", PEOPLE_LIMIT) + json_cases(add_team, b"/api/teams", team_bodies)
             + auth_cases(add_team, b"/api/teams", dumps({"name": "hostile"}))
             + body_cases(member, b"/api/teams/1/members", PEOPLE_LIMIT)
             + json_cases(member, b"/api/teams/1/members", member_bodies)
             + path_cases(member, "/api/teams/{}/members", dumps(VALID_MEMBER))
             + auth_cases(member, b"/api/teams/1/members", dumps(VALID_MEMBER))
             + path_cases(disable, "/api/users/{}/disable") + auth_cases(disable, b"/api/users/1/disable"))
    return gets + heads(gets) + posts


BANT_LIMIT = 16 * KIB  # sdr_console/api/bant.py MAX_BODY
VALID_BANT = {"budget": "100k_500k", "authority": "decision_maker", "need": "需求", "timeline": "1_3_months"}


def bant_cases() -> list[Case]:
    """BANT and the hand-off (sdr_console/api/bant.py). The seeded lead has no BANT: a well-formed hand-off is a
    409 naming the missing fields, and changes nothing."""
    put, transfer = ("PUT", "/api/leads/{lead_id}/bant"), ("POST", "/api/leads/{lead_id}/transfer")
    bant_target, transfer_target = b"/api/leads/{lead}/bant", b"/api/leads/{lead}/transfer"
    bant_bodies = {
        "nothing to change": {},
        "unknown field": {**VALID_BANT, "money": "1"},
        "actor_id naming someone else": {**VALID_BANT, "actor_id": "boss"},
        "budget 201 characters": {**VALID_BANT, "budget": "万" * 201},
        "budget blank": {**VALID_BANT, "budget": "  "},
        "budget an integer": {**VALID_BANT, "budget": 100000},
        "authority unknown code": {**VALID_BANT, "authority": "ceo"},
        "authority a list": {**VALID_BANT, "authority": ["user"]},
        "need 1001 characters": {**VALID_BANT, "need": "需" * 1001},
        "need NUL": {**VALID_BANT, "need": "a\u0000"},
        "need lone surrogate": {**VALID_BANT, "need": "\udfff"},
        "need an object": {**VALID_BANT, "need": {"a": 1}},
        "timeline true": {**VALID_BANT, "timeline": True},
        "timeline unknown code": {**VALID_BANT, "timeline": "soon"},
    }
    transfer_bodies = {
        "note an integer": {"note": 5},
        "note 2001 characters": {"note": "注" * 2001},
        "note NUL": {"note": "a\u0000"},
        "actor in the body": {"actor": "sdr"},
        "actor_id in the body": {"actor_id": "boss"},
        "BANT incomplete": {},
        "BANT incomplete, with a note": {"note": "准备移交"},
    }
    return (body_cases(put, bant_target, BANT_LIMIT) + json_cases(put, bant_target, bant_bodies)
            + path_cases(put, "/api/leads/{}/bant", dumps(VALID_BANT)) + auth_cases(put, bant_target, dumps(VALID_BANT))
            + body_cases(transfer, transfer_target, BANT_LIMIT) + json_cases(transfer, transfer_target, transfer_bodies)
            + path_cases(transfer, "/api/leads/{}/transfer", b"{}") + auth_cases(transfer, transfer_target, b"{}"))


LEAD_WORK_LIMIT = 32 * KIB  # sdr_console/api/lead_work.py MAX_BODY


def lead_work_cases() -> list[Case]:
    """Notes, tasks and tags on a lead (sdr_console/api/lead_work.py)."""
    notes, tasks = ("POST", "/api/leads/{lead_id}/notes"), ("POST", "/api/leads/{lead_id}/tasks")
    tags, done = ("POST", "/api/leads/{lead_id}/tags"), ("POST", "/api/leads/{lead_id}/tasks/{task_id}/done")
    note, task, tag = {"body": "hostile"}, {"title": "hostile"}, {"add": ["hostile"]}
    note_bodies = {"body missing": {}, "body blank": {"body": " "}, "body 5001 characters": {"body": "注" * 5001},
                   "body a list": {"body": ["x"]}, "body NUL": {"body": "a\u0000"}, "body lone surrogate":
                   {"body": "\udfff"}, "author given": {**note, "author": "boss"}}
    task_bodies = {"title missing": {}, "title 201 characters": {"title": "t" * 201}, "title null": {"title": None},
                   "due_at without zone": {**task, "due_at": "2026-12-31T18:00:00"},
                   "due_at before year 1 in UTC": {**task, "due_at": "0001-01-01T00:00:00+01:00"},
                   "due_at after 9999 in UTC": {**task, "due_at": "9999-12-31T23:59:59-01:00"},
                   "due_at a number": {**task, "due_at": 1767225600}, "due_at garbage": {**task, "due_at": "明天"},
                   "assignee unknown": {**task, "assignee": "nobody-here"}, "assignee an object": {**task,
                   "assignee": {"a": 1}}, "created_by given": {**task, "created_by_user_id": 1}}
    tag_bodies = {"nothing": {}, "add a string": {"add": "vip"}, "tag empty": {"add": [""]},
                  "tag 101 characters": {"add": ["t" * 101]}, "tag with a newline": {"add": ["a\nb"]},
                  "tag with ESC": {"add": ["a\u001bb"]}, "tag NUL": {"add": ["\u0000"]},
                  "tag an integer": {"add": [1]}, "21 tags": {"add": [f"t{n}" for n in range(21)]},
                  "add and remove the same": {"add": ["a"], "remove": ["a"]}}
    cases: list[Case] = []
    for route, suffix, valid, bodies in ((notes, "notes", note, note_bodies), (tasks, "tasks", task, task_bodies),
                                         (tags, "tags", tag, tag_bodies)):
        target = b"/api/leads/{lead}/" + suffix.encode()
        cases += (body_cases(route, target, LEAD_WORK_LIMIT) + json_cases(route, target, bodies)
                  + path_cases(route, "/api/leads/{}/" + suffix, dumps(valid))
                  + auth_cases(route, target, dumps(valid)))
    cases += (path_cases(done, "/api/leads/{lead}/tasks/{}/done") + path_cases(done, "/api/leads/{}/tasks/1/done")
              + auth_cases(done, b"/api/leads/{lead}/tasks/1/done"))
    gets = []
    for suffix, params in (("notes", ("limit", "offset")), ("tasks", ("limit", "offset", "status"))):
        route, target = ("GET", "/api/leads/{lead_id}/" + suffix), b"/api/leads/{lead}/" + suffix.encode()
        gets += (query_cases(route, target, params) + path_cases(route, "/api/leads/{}/" + suffix)
                 + auth_cases(route, target))
    return cases + gets + heads(gets)


SAVED_FILTER_BODIES = {
    "name missing": {"query": ""}, "name empty": {"name": "", "query": ""}, "name 61 characters": {"name": "n" * 61,
    "query": ""}, "name NUL": {"name": "a\u0000", "query": ""}, "name a number": {"name": 1, "query": ""},
    "query missing": {"name": "x"}, "query an unknown stage": {"name": "x", "query": "stage=nope"},
    "query superscript limit": {"name": "x", "query": "limit=%C2%B2"}, "query a list": {"name": "x", "query": [1]},
    "query values not text": {"name": "x", "query": {"team": 1}}, "query 2001 characters": {"name": "x",
    "query": "q=" + "x" * 1999}, "unknown field": {"name": "x", "query": "", "user_id": 1},
}


def lead_list_cases() -> list[Case]:
    """Saved filters (sdr_console/api/saved_filters.py) and the list page (the list and export are in
    console_get_cases)."""
    saved, delete, page = ("POST", "/api/saved-filters"), ("DELETE", "/api/saved-filters/{filter_id}"), \
        ("GET", "/console/leads")
    gets = auth_cases(("GET", "/api/saved-filters"), b"/api/saved-filters")
    export = ("GET", "/api/leads/export.csv")  # a harmless query exports (and audits): only the refused ones here
    gets += [c for c in query_cases(export, b"/api/leads/export.csv", ("limit", "quadrant", "team", "active_from"))
             if c.expect != "ok"] + auth_cases(export, b"/api/leads/export.csv")
    gets += [Case(page, "invalid utf-8 query", b"/console/leads?q=%FF", auth="none", shape=False),
             Case(page, "NUL in the query", b"/console/leads?stage=%00", auth="none", shape=False)]
    return (gets + heads(gets) + body_cases(saved, b"/api/saved-filters", SERVER_LIMIT)
            + json_cases(saved, b"/api/saved-filters", SAVED_FILTER_BODIES)
            + auth_cases(saved, b"/api/saved-filters", dumps({"name": "x", "query": ""}))
            + path_cases(delete, "/api/saved-filters/{}") + auth_cases(delete, b"/api/saved-filters/1"))


HANDOFF_LIMIT = 16 * KIB  # sdr_console/api/handoffs.py MAX_BODY
REPLY_BODIES = {
    "text missing": {}, "text empty": {"text": ""}, "text blank": {"text": "  \n "},
    "text 1001 characters": {"text": "回" * 1001}, "text a number": {"text": 5}, "text a list": {"text": ["x"]},
    "text NUL": {"text": "a\u0000"}, "text lone surrogate": {"text": "\udfff"},
    "mode unknown": {"text": "x", "mode": "fax"}, "mode a number": {"text": "x", "mode": 1},
    "author given": {"text": "x", "author_user_id": 1},
}


def handoff_cases() -> list[Case]:
    """Claiming and answering hand-off questions (sdr_console/api/handoffs.py) and the queue page."""
    claim, reply = ("POST", "/api/handoffs/{handoff_id}/claim"), ("POST", "/api/handoffs/{handoff_id}/reply")
    valid = dumps({"text": "您好"})
    cases = (path_cases(claim, "/api/handoffs/{}/claim", b"{}") + auth_cases(claim, b"/api/handoffs/1/claim")
             + body_cases(reply, b"/api/handoffs/99999/reply", HANDOFF_LIMIT)
             + json_cases(reply, b"/api/handoffs/99999/reply", REPLY_BODIES)
             + path_cases(reply, "/api/handoffs/{}/reply", valid) + auth_cases(reply, b"/api/handoffs/1/reply", valid))
    pages = [Case(("GET", "/console/handoffs"), "invalid utf-8 query", b"/console/handoffs?tab=%FF", auth="none",
                  shape=False),
             Case(("GET", "/console/handoffs/list"), "NUL in the query", b"/console/handoffs/list?tab=%00",
                  auth="none", shape=False)]
    return cases + pages + heads(pages)


PROFILE_LIMIT = 16 * KIB  # sdr_console/api/profile.py MAX_BODY
LEAD_PAGES = ("", "/profile", "/score", "/stages", "/tags", "/notes", "/tasks", "/bant", "/duplicates", "/timeline")


def lead_360_cases() -> list[Case]:
    """The 360: its profile edit and timeline (JSON API) and its pages (HTML: not signed in, so no JSON shape)."""
    profile = ("PATCH", "/api/leads/{lead_id}/profile")
    valid = {"city": "杭州"}
    bad = {"nothing": {}, "unknown field": {"phone": "13700001111"}, "owner given": {"owner_user_id": 1},
           "choice not a code": {"industry": "互联网"}, "a number": {"company": 5}, "a list": {"company": ["a"]},
           "101 characters": {"company": "x" * 101}, "javascript url": {"website": "javascript:alert(1)"},
           "newline": {"display_name": "a\nb"}, "bidi override": {"city": "杭\u202e州"}, "NUL": {"city": "\u0000"},
           "lone surrogate": {"city": "\udfff"}, "one good one bad": {"city": "杭州", "job_title": "ceo"}}
    target = b"/api/leads/{lead}/profile"
    cases = (body_cases(profile, target, PROFILE_LIMIT) + json_cases(profile, target, bad)
             + path_cases(profile, "/api/leads/{}/profile", dumps(valid)) + auth_cases(profile, target, dumps(valid)))
    timeline = ("GET", "/api/leads/{lead_id}/timeline")
    path = b"/api/leads/{lead}/timeline"
    gets = (query_cases(timeline, path, ("before", "limit")) + path_cases(timeline, "/api/leads/{}/timeline")
            + auth_cases(timeline, path))
    gets += [Case(timeline, f"cursor {name}", path + b"?before=" + value) for name, value in {
        "garbage": b"garbage", "unknown source": b"1.x.1", "id 2^64": b"1.t.18446744073709551616",
        "year 10000": b"253402300800000000.t.1", "61 characters": b"1" * 61, "spaces": b"1.t.1%20"}.items()]
    pages = []
    for suffix in LEAD_PAGES:
        route, page = ("GET", "/console/leads/{lead_id}" + suffix), b"/console/leads/{lead}" + suffix.encode()
        pages += [Case(route, "htmx without a session", page, auth="none", headers=((b"HX-Request", b"true"),)),
                  Case(route, "forged session cookie", page, auth="none", headers=((b"HX-Request", b"true"),
                                                                                   (b"Cookie", b"lr_console=\xff"))),
                  Case(route, "raw invalid utf-8 id", b"/console/leads/\xff" + suffix.encode(), auth="none"),
                  Case(route, "signed out, junk query", page + b"?before=%00&x=%FF", auth="none", expect="ok")]
    pages = [replace(c, shape=False) for c in pages]
    return cases + gets + heads(gets) + pages + heads(pages)


def other_cases() -> list[Case]:
    """Not a route of the app: no route to cover, always run."""
    none = ("*", "")
    return [
        Case(none, "PATCH /api/content", b"/api/content", b"{}", auth="api"),
        Case(none, "DELETE /api/leads/{lead}", b"/api/leads/{lead}", auth="api"),
        Case(none, "GET /api/%00 (NUL in an unknown path)", b"/api/%00", auth="api"),
        Case(none, "GET /api/../../etc/passwd (path traversal)", b"/api/../../etc/passwd", auth="api"),
    ]


def corpus() -> list[Case]:
    gets = console_get_cases()
    pages = page_cases()
    mp_describe = [Case(("GET", "/api/mp/forms/{form_id}"), "unknown form", b"/api/mp/forms/nope", auth="mp"),
                   Case(("GET", "/api/mp/forms/{form_id}"), "form id NUL", b"/api/mp/forms/%00", auth="mp")]
    mp_describe += mp_auth_cases(("GET", "/api/mp/forms/{form_id}"), b"/api/mp/forms/demo")
    console_pages = console_page_cases()
    return (gets + heads(gets + pages + mp_describe) + pages + mp_describe + content_cases() + stage_cases()
            + mp_submit_cases() + mp_login_cases() + console_post_cases() + console_pages
            + heads([c for c in console_pages if c.method == "GET"]) + people_cases() + bant_cases()
            + lead_work_cases() + lead_list_cases() + handoff_cases() + lead_360_cases()
            + other_cases())
