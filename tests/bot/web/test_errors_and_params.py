"""One JSON error shape for every endpoint, produced centrally, and request parameters parsed by one helper."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot.config.core import build_config
from bot.keys import CONFIG
from bot.web.errors import ApiError
from bot.web.middleware import error_middleware
from bot.web.params import bearer_token, choice_param, int_param, parse_json, path_id
from tests.support.helpers import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SHAPE = {"error", "code", "message"}


def request(query: str = "", **match: str) -> web.Request:
    req = make_mocked_request("GET", f"/api/x?{query}")
    req.match_info.update(match)
    return req


@pytest.mark.parametrize("raw", ["²", "１２", "-1", "1.0", "0x10", " 5", "5 ", "9" * 30, "abc"])
def test_numbers_are_ascii_digits_in_range(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        int_param(request(f"limit={raw}"), "limit", 50, 1, 200)
    assert info.value.status == 400 and info.value.code == "bad_parameter" and "limit" in info.value.message


def test_a_number_in_range_and_the_default() -> None:
    assert int_param(request("limit=7"), "limit", 50, 1, 200) == 7
    assert int_param(request(""), "limit", 50, 1, 200) == 50
    assert int_param(request("limit="), "limit", 50, 1, 200) == 50
    with pytest.raises(ApiError):
        int_param(request("limit=201"), "limit", 50, 1, 200)


@pytest.mark.parametrize("raw", ["²", "0", "1" * 19, "x", "1e3", "٣"])
def test_path_ids_that_cannot_name_a_row_are_not_found(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        path_id(request(lead_id=raw), "lead_id")
    assert info.value.status == 404 and info.value.code == "not_found"


def test_a_path_id() -> None:
    assert path_id(request(lead_id="42"), "lead_id") == 42


def test_choices() -> None:
    assert choice_param(request("status=open"), "status", ("open", "all")) == "open"
    assert choice_param(request(""), "status", ("open", "all"), default="all") == "all"
    with pytest.raises(ApiError) as info:
        choice_param(request("status=nope"), "status", ("open", "all"))
    assert info.value.code == "bad_parameter" and "status" in info.value.message


async def boom(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def refuse(_request: web.Request) -> web.Response:
    raise ApiError(409, "refused", "不行", fields={"a": "b"})


async def page(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug in a page")


@pytest.fixture
async def bare(aiohttp_client):
    """Only the middleware and three handlers: what the middleware alone makes of failures."""
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = build_config({"wechat": {"app_id": "wx1", "token": "t"}})
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/api/refuse", refuse)
    app.router.add_get("/f/page", page)
    return await aiohttp_client(app)


async def test_the_middleware_shapes_every_json_failure(bare) -> None:
    resp = await bare.get("/api/boom")
    body = await resp.json()
    assert resp.status == 500 and set(body) == SHAPE and body["error"] == body["code"] == "internal_error"
    assert "a bug" not in body["message"]  # internals stay in the log
    resp = await bare.get("/api/refuse")
    assert resp.status == 409 and await resp.json() == {"error": "refused", "code": "refused", "message": "不行",
                                                       "fields": {"a": "b"}}
    for path, status in (("/api/nowhere", 404), ("/api/refuse", 405)):
        resp = await (bare.get(path) if status == 404 else bare.post(path))
        body = await resp.json()
        assert resp.status == status and set(body) == SHAPE, path


async def test_pages_keep_their_own_errors(bare) -> None:
    resp = await bare.get("/f/page")
    assert resp.status == 500 and resp.content_type != "application/json"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/leads?limit=²", 400),
    ("GET", "/api/leads?offset=-1", 400),
    ("GET", "/api/leads/²", 404),
    ("GET", "/api/leads/99999", 404),
    ("GET", "/api/leads/1/score", 404),
    ("GET", "/api/leads/x/stages", 404),
    ("POST", "/api/leads/1/stage", 400),
    ("POST", "/api/leads/77/erase", 404),
    ("GET", "/api/outbox?status=nope", 400),
    ("GET", "/api/outbox?method=oa.nope", 400),
    ("GET", "/api/handoffs?status=nope", 400),
    ("PUT", "/api/content", 400),
    ("POST", "/api/mp/login", 503),  # no [mini_program] in the test config
    ("GET", "/api/mp/forms/demo", 503),
    ("GET", "/api/nothing-here", 404),
    ("DELETE", "/api/leads", 405),
])
async def test_every_json_endpoint_answers_in_the_one_shape(app_client, method, path, status) -> None:
    client = await app_client()
    resp = await client.request(method, path, headers=AUTH, data=b"not json")
    body = await resp.json()
    assert resp.status == status, (path, body)
    assert SHAPE <= set(body) and body["error"] == body["code"], (path, body)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), (path, body)  # a Chinese message


async def test_an_unauthenticated_call_is_401_in_the_same_shape(app_client) -> None:
    client = await app_client()
    resp = await client.get("/api/leads")
    body = await resp.json()
    assert resp.status == 401 and body["error"] == "unauthorized" and resp.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("raw", "says"), [
    (b"[" * 10000 + b"]" * 10000, "嵌套"),
    (b'{"a":' + b"[" * 32 + b"]" * 32 + b"}", "嵌套"),
    (b'{"a":"\xff"}', "UTF-8"),
    ('{"a":"b"}'.encode("utf-16"), "UTF-8"),
    (b'{"a":"\\u0000"}', "NUL"),
    (b'{"\\ud800":1}', "NUL"),
    (b'{"a":["\\udfff"]}', "NUL"),
    (b'{"a":18446744073709551616}', "数字"),
    (b'{"a":-9223372036854775808}', "数字"),
    (b'{"a":NaN}', "JSON 对象"),
    (b'{"a":1e999}', "JSON 对象"),
    (b'{"a":1,"a":2}', "JSON 对象"),
    (b'{"a":' + b"9" * 5000 + b"}", "JSON 对象"),
    (b"[]", "JSON 对象"),
    (b"", "JSON 对象"),
])
def test_the_json_parser_refuses_and_says_why(raw, says) -> None:
    with pytest.raises(ApiError) as info:
        parse_json(raw, code="bad_request")
    assert info.value.status == 400 and info.value.code == "bad_request" and says in info.value.message


def test_the_json_parser_accepts_what_clients_send() -> None:
    raw = '{"a": [1, 9223372036854775807, -1.5, true, null, "王芳 \\"x\\" \\u00e9 [{"], "b": {"c": {}}}'
    assert parse_json(raw.encode()) == {"a": [1, 2**63 - 1, -1.5, True, None, '王芳 "x" é [{'], "b": {"c": {}}}
    # Brackets inside strings do not count towards the depth.
    assert parse_json(b'{"a":"' + b"[" * 100 + b'"}') == {"a": "[" * 100}
    assert parse_json(b'{"a":' + b"[" * 31 + b"]" * 31 + b"}")


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.DEF-123_~+/=", "abc.DEF-123_~+/="),
    ("bearer  abc", "abc"),
    ("Bearer", None),
    ("Bearer ", None),
    ("Basic abc", None),
    ("Bearer 令牌", None),
    ("Bearer a b", None),
    ("Bearer " + "a" * 600, None),
])
def test_bearer_tokens_are_printable_ascii(header, token) -> None:
    req = make_mocked_request("GET", "/api/x", headers={"Authorization": header})
    assert bearer_token(req) == token


async def test_a_non_ascii_authorization_header_is_401_not_500(app_client) -> None:
    client = await app_client()
    for value in ("Bearer 令牌", "Bearer \udcff\udcfe"):
        resp = await client.get("/api/leads", headers={"Authorization": value.encode("utf-8", "surrogateescape")
                                                       .decode("latin-1")})
        body = await resp.json()
        assert resp.status == 401 and body["code"] == "unauthorized", body


@pytest.mark.parametrize("timestamp", ["%C2%B2", "%D9%A3%D9%A3", "%EF%BC%91"])
async def test_callbacks_refuse_unicode_digit_timestamps(app_client, timestamp) -> None:
    client = await app_client()
    for path in ("/wechat/callback", "/wecom/callback"):
        resp = await client.get(f"{path}?signature=x&msg_signature=x&timestamp={timestamp}&nonce=1&echostr=e")
        body = await resp.json()
        assert 400 <= resp.status < 500 and SHAPE <= set(body), (path, resp.status, body)
