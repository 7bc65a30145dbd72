"""One declaration per endpoint: its request and response models (pydantic) validate the request, shape the
answer and generate ``/api/openapi.json`` (sdr_console/api/openapi.py walks the route table for them).

Why pydantic: it is the field's standard for typed request models in Python web services (FastAPI, Litestar,
aiohttp-pydantic all build on it), its ``model_json_schema`` emits JSON Schema 2020-12 — what OpenAPI 3.1 uses
for schemas — so the document is generated from the very classes that validate, never written beside them.

A handler declares ``@api_spec(...)`` under its auth decorator (``functools.wraps`` carries the mark up), reads
its input with ``parse_body`` / ``parse_query`` and answers with ``respond``. Bodies are first read by the app's
one bounded JSON parser (bot/web/params.py: size, depth, NUL, lone surrogates, duplicate keys), then validated.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from bot.web.errors import ApiError, json_response
from bot.web.params import json_object
from leads.content import bad_text

M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
SPEC_MARK = "__api_spec__"
CONSOLE, PUBLIC, MINI_PROGRAM = "console", "public", "mini_program"


class RequestModel(BaseModel):
    """A request body or query: unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class QueryModel(BaseModel):
    """Query parameters: unknown ones are ignored (browsers and proxies add their own)."""

    model_config = ConfigDict(extra="ignore")


class ResponseModel(BaseModel):
    """An answer: built by field name, sent by alias (``from`` is a Python keyword)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _clean_text(value: str) -> str:
    if bad_text(value):
        raise ValueError("含有不可存储的字符（NUL 或孤立代理项）")
    return value


# Text from a query string (bodies are checked by the JSON parser already): no NUL, no lone surrogate.
Text = Annotated[str, AfterValidator(_clean_text)]


@dataclass(frozen=True, slots=True)
class Spec:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()  # the 4xx statuses it answers besides 401/403 (the one error shape)
    content_type: str = "application/json"  # of the successful answer (text/csv for an export)
    tags: tuple[str, ...] = field(default=())
    auth: str = CONSOLE  # who may call: CONSOLE (bearer token or console session), PUBLIC, or MINI_PROGRAM
    also: tuple[int, ...] = ()  # other statuses answered with the response model (/healthz's 503)


def api_spec(summary: str, *, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: type[BaseModel] | None = None, status: int = 200, errors: tuple[int, ...] = (),
             content_type: str = "application/json", tags: tuple[str, ...] = (),
             auth: str = CONSOLE, also: tuple[int, ...] = ()) -> Callable[[H], H]:
    spec = Spec(summary, body, query, response, status, errors, content_type, tags, auth, also)

    def mark(handler: H) -> H:
        setattr(handler, SPEC_MARK, spec)
        return handler

    return mark


def spec_of(handler: Any) -> Spec | None:
    return getattr(handler, SPEC_MARK, None)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]


def _invalid(code: str, what: str, exc: ValidationError) -> ApiError:
    errors = _field_errors(exc)
    first = errors[0]
    return ApiError(400, code, f"{what} {first['field'][:60]} 无效：{first['message'][:200]}", errors=errors[:20])


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated by ``model``, or a 400 naming the first bad field (all of them in ``errors``)."""
    raw = await json_object(request)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("invalid_body", "字段", exc) from exc


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin is list or origin is tuple


def _is_int(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType or origin is list or origin is Annotated:
        return any(_is_int(a) for a in typing.get_args(annotation))
    return annotation is int


def _ascii_digits(values: list[str]) -> bool:
    # pydantic, like int(), reads "1.0", "٣", " 5" and "+5" as integers: a query integer is ASCII digits only
    # (bot/web/params.py's rule, which the hostile corpus holds every endpoint to).
    return all(v.isascii() and v.isdigit() for v in values)


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string validated by ``model``; a list field takes the parameter repeated (``?stage=a&stage=b``).
    An empty value counts as absent (an untouched form field)."""
    return validate_query(request.query, model)


def validate_query(query: MultiMapping[str], model: type[M]) -> M:
    """``parse_query`` for query-string-like values from elsewhere (a saved filter, a page's own parameters)."""
    raw: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        values = [v for v in query.getall(key, []) if v != ""]
        if not values:
            continue
        if _is_int(info.annotation) and not _ascii_digits(values):
            raise ApiError(400, "bad_parameter", f"参数 {key[:60]} 无效：须为整数（ASCII 数字）",
                           errors=[{"field": key[:60], "message": "须为整数"}])
        raw[name] = values if _is_list(info.annotation) else values[-1]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("bad_parameter", "参数", exc) from exc


def respond(body: BaseModel, status: int = 200) -> web.Response:
    """The answer, serialised by its model (the same one the OpenAPI document describes)."""
    return json_response(body.model_dump(mode="json", by_alias=True), status=status)
