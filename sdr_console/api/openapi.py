"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the JSON API, generated from the route table.

Every route under ``/api/`` (and ``/healthz``) is described by the ``@api_spec`` declaration of its handler
(sdr_console/api/spec.py): path parameters from the route's template, query parameters and bodies from the
request models, the answer from the response model, and the errors in the one shape of bot/web/errors.py. The
schemas are pydantic's JSON Schema (2020-12, what OpenAPI 3.1 uses), so the document cannot drift from the
validation. Public: it describes the API, it holds no data. Built once per app, on first request.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.web.errors import json_response
from bot.web.params import MAX_ID_DIGITS
from sdr_console.api import mp_spec
from sdr_console.api.spec import CONSOLE, MINI_PROGRAM, PUBLIC, Spec, api_spec, spec_of
from sdr_console.web.sessions import COOKIE_NAME

PATH = "/api/openapi.json"
REF = "#/components/schemas/{model}"
DOCUMENT = web.AppKey("openapi_document", dict)
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
METHODS = ("get", "put", "post", "patch", "delete")
ERROR_TEXT = {400: "请求无效", 401: "未认证", 403: "无权执行", 404: "不存在", 409: "与当前状态冲突",
              413: "请求体过大", 429: "请求过于频繁", 502: "上游服务不可用", 503: "服务不可用"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error", "code", "message"], "additionalProperties": True,
    "description": "每个错误的统一格式（bot/web/errors.py）：error 与 code 为同一机器码，message 为中文说明。",
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "服务令牌或个人访问令牌（leadrelay user token）"},
    "session": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME,
                "description": "控制台登录会话；修改类请求须带 X-CSRF-Token 请求头"},
    "miniProgram": {"type": "http", "scheme": "bearer", "description": "小程序会话令牌（POST /api/mp/login）"},
}
TAGS = {"leads": "潜客", "lead-work": "备注、任务与标签", "scores": "评分与阶段", "bant": "BANT 与移交销售",
        "handoffs": "待人工回复", "duplicates": "重复潜客", "saved-filters": "保存的筛选", "outbox": "发件箱",
        "content": "内容库", "people": "用户与团队", "audit": "审计日志", "mini-program": "小程序",
        "health": "健康检查", "docs": "接口文档"}
SECURITY = {CONSOLE: [{"bearer": []}, {"session": []}], PUBLIC: [], MINI_PROGRAM: [{"miniProgram": []}]}


def documented(path: str) -> bool:
    return path.startswith("/api/") or path == "/healthz"


def api_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path template, handler) of every documented route, HEAD (aiohttp's twin of GET) left out."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if path and documented(path) and route.method.lower() in METHODS:
            found.append((route.method.lower(), path, route.handler))
    return found


def route_spec(method: str, path: str, handler: Any) -> Spec | None:
    """The handler's own declaration, else the one made for its route (the mini-program's: mp_spec.py)."""
    return spec_of(handler) or mp_spec.SPECS.get((method, path))


def path_params(path: str) -> list[str]:
    return _PARAM.findall(path)


def _path_param(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if name.endswith("_id"):  # bot.web.params.path_id: ASCII digits, not zero, a bigint
        schema = {"type": "integer", "minimum": 1, "maximum": 10**MAX_ID_DIGITS - 1}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_params(model_schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(model_schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": schema,
             **({"description": schema["description"]} if "description" in schema else {})}
            for name, schema in model_schema.get("properties", {}).items()]


def _errors(spec: Spec, params: list[str]) -> dict[str, Any]:
    statuses = set(spec.errors)
    if spec.auth != PUBLIC:
        statuses |= {401} if spec.auth == MINI_PROGRAM else {401, 403}
    if spec.body is not None or spec.query is not None:
        statuses |= {400}
    if spec.body is not None:
        statuses |= {413}
    if params:
        statuses |= {404}
    ref = {"$ref": REF.format(model="Error")}
    return {str(s): {"description": ERROR_TEXT.get(s, "错误"), "content": {"application/json": {"schema": ref}}}
            for s in sorted(statuses)}


def _success(spec: Spec, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if spec.response is not None:
        schema = refs[(spec.response, "serialization")]
    elif spec.content_type == "application/json":
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    return {"description": "成功", "content": {spec.content_type: {"schema": schema}}}


def _operation(method: str, path: str, handler: Any, spec: Spec | None,
               refs: dict[Any, dict[str, Any]], defs: dict[str, Any]) -> dict[str, Any]:
    params = path_params(path)
    if spec is None:  # tests/sdr_console/test_openapi.py fails on it: documented only as existing
        return {"summary": "（未声明）", "operationId": f"{method}_{handler.__name__}",
                "parameters": [_path_param(p) for p in params], "responses": {"default": {"description": "?"}}}
    parameters = [_path_param(p) for p in params]
    if spec.query is not None:
        parameters += _query_params(defs[refs[(spec.query, "validation")]["$ref"].rsplit("/", 1)[1]])
    op: dict[str, Any] = {
        "summary": spec.summary, "operationId": f"{method}_{handler.__name__}",
        "tags": list(spec.tags) or [path.split("/")[2] if path.startswith("/api/") else "health"],
        "parameters": parameters, "security": SECURITY[spec.auth],
        "responses": {str(spec.status): _success(spec, refs), **_errors(spec, params),
                      **{str(s): {**_success(spec, refs), "description": ERROR_TEXT.get(s, "")} for s in spec.also}},
    }
    if handler.__doc__:
        op["description"] = handler.__doc__.strip()
    if spec.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": refs[(spec.body, "validation")]}}}
    return op


def build_document(app: web.Application) -> dict[str, Any]:
    routes = [(method, path, handler, route_spec(method, path, handler)) for method, path, handler in api_routes(app)]
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = set()
    for *_, spec in routes:
        if spec is not None:
            wanted |= {(m, "validation") for m in (spec.body, spec.query) if m is not None}
            wanted |= {(spec.response, "serialization")} if spec.response is not None else set()
    ordered = sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, top = models_json_schema(ordered, ref_template=REF)
    defs = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler, spec in routes:
        paths.setdefault(path, {})[method] = _operation(method, path, handler, spec, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "LeadRelay API", "version": "1.0.0",
                 "description": "LeadRelay 线索工作台与小程序的 JSON 接口。错误统一为 Error 格式。"},
        "tags": [{"name": name, "description": label} for name, label in TAGS.items()],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {**defs, "Error": ERROR_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }


@api_spec("OpenAPI 文档（本文件）", auth=PUBLIC, tags=("docs",))
async def openapi_json(request: web.Request) -> web.Response:
    cache = request.app[DOCUMENT]
    if not cache:  # the route table is frozen once the app runs: built once, on the first request
        cache.update(build_document(request.app))
    return json_response(cache)


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = {}
    app.router.add_get(PATH, openapi_json)
