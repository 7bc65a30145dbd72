"""``/api/openapi.json`` and ``/api/docs``: a valid OpenAPI 3.1 document that covers every JSON route of the app
(a new route without ``@api_spec`` fails here), with path parameters as the route table has them."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from schemathesis.specs.openapi.definitions import OPENAPI_31

from sdr_console.api.openapi import api_routes, build_document, path_params, route_spec
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshots


@pytest.fixture
async def client(app_client):
    return await app_client()


async def fetch_document(client) -> dict:
    resp = await client.get("/api/openapi.json")  # no token, no session: public
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


async def test_the_document_is_valid_openapi_3_1(client) -> None:
    doc = await fetch_document(client)
    assert doc["openapi"] == "3.1.0"
    meta = validator_for(OPENAPI_31)(OPENAPI_31)
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in meta.iter_errors(doc)]
    assert problems == []
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises SchemaError naming the problem
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "session", "miniProgram"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "code", "message"]


async def test_every_json_route_declares_its_spec(client) -> None:
    app = client.server.app
    routes = api_routes(app)
    assert len(routes) > 30
    undeclared = sorted(f"{m.upper()} {p}" for m, p, h in routes if route_spec(m, p, h) is None)
    assert undeclared == [], "routes without @api_spec (sdr_console/api/spec.py): " + ", ".join(undeclared)
    doc = await fetch_document(client)
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(m, p) for m, p, _ in routes}


async def test_operations_match_their_routes(client) -> None:
    doc = await fetch_document(client)
    assert doc == build_document(client.server.app)  # cached once, the same document
    ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            in_path = [p for p in op["parameters"] if p["in"] == "path"]
            assert [p["name"] for p in in_path] == path_params(path), (method, path)
            for p in in_path:
                assert p["required"] is True
                if p["name"].endswith("_id"):
                    assert p["schema"]["type"] == "integer" and p["schema"]["minimum"] == 1
            assert op["summary"] and op["responses"], (method, path)
            errors = {s: r for s, r in op["responses"].items() if s.startswith("4")}
            for answer in errors.values():
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if op["security"]:  # authenticated: 401 and (console) 403 documented
                assert "401" in errors, (method, path)
            if in_path:
                assert "404" in errors, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= set(errors), (method, path)
    assert len(ids) == len(set(ids))


async def test_query_bodies_and_answers_come_from_the_models(client) -> None:
    doc = await fetch_document(client)
    outbox = doc["paths"]["/api/outbox"]["get"]
    params = {p["name"]: p for p in outbox["parameters"]}
    assert set(params) == {"limit", "offset", "status", "method", "lead_id"}
    assert params["limit"]["schema"]["maximum"] == 200 and params["limit"]["required"] is False
    assert "sandboxed" in str(params["status"]["schema"])
    stage = doc["paths"]["/api/leads/{lead_id}/stage"]["post"]
    body = stage["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/StageChange"}
    assert set(doc["components"]["schemas"]["StageChange"]["required"]) == {"to", "reason"}
    answer = stage["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    transition = doc["components"]["schemas"][answer]["properties"]["transition"]["$ref"].rsplit("/", 1)[1]
    assert "from" in doc["components"]["schemas"][transition]["properties"]  # the alias, as sent
    assert doc["paths"]["/api/leads/{lead_id}/notes"]["post"]["responses"].keys() >= {"201", "401", "403", "404"}
    health = doc["paths"]["/healthz"]["get"]
    assert health["security"] == [] and health["responses"]["503"]["content"] == health["responses"]["200"]["content"]


async def test_the_docs_page_renders_with_local_assets_only(client) -> None:
    resp = await client.get("/api/docs")  # public, like the document
    assert resp.status == 200
    html = await resp.text()
    assert "<title>API 文档 · LeadRelay 线索工作台</title>" in html
    assert 'data-spec-url="/api/openapi.json"' in html and 'id="swagger-ui"' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s == "data:," or s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "/console/static/api-docs.js" in sources
    assert "<script>" not in html and "<style" not in html  # CSP: no inline script or style element
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    for name in ("api-docs.js", "vendor/swagger-ui/swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui.css"):
        if name.startswith("vendor/") and f"/console/static/{name}" not in sources:
            continue  # node_modules absent on this machine: the page says so
        assert (await client.get(f"/console/static/{name}")).status == 200, name


async def test_the_docs_page_shows_every_operation_in_a_browser(client, backend, playwright_api) -> None:
    """Swagger UI runs under the page's CSP (scripts from our origin only) and lists the API's operations."""
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    doc = await fetch_document(client)
    operations = sum(len(ops) for ops in doc["paths"].values())
    async with playwright_api() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")).new_page()
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("request", lambda r: errors.append(f"off-site {r.url}") if not r.url.startswith(base)
                    and not r.url.startswith("data:") else None)
            await page.goto(f"{base}/api/docs")
            await page.wait_for_selector(".opblock-summary", timeout=15_000)
            assert await page.title() == "API 文档 · LeadRelay 线索工作台"
            assert "LeadRelay API 文档" in await page.inner_text("main")
            assert await page.locator(".opblock").count() == operations
            assert await page.locator(".errors-wrapper").count() == 0  # Swagger UI reads the document cleanly
            await page.screenshot(path=str(shots / "api-docs.png"), full_page=False)
            assert errors == []  # no CSP violation, no missing file, nothing fetched from elsewhere
        finally:
            await browser.close()


def test_the_mini_program_specs_match_their_routes_and_limits() -> None:
    """Declared by route (the console may not import bot.capture): the routes exist, the limits agree."""
    from bot.capture import miniprogram_web
    from bot.capture.routes import add_capture
    from sdr_console.api import mp_spec

    app = web.Application()
    add_capture(app)
    routes = {(m, p) for m, p, _ in api_routes(app)}
    assert set(mp_spec.SPECS) <= routes
    assert mp_spec.MAX_CODE_LEN == miniprogram_web.MAX_CODE_LEN
