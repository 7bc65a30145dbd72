"""``GET /api/docs``: the browsable API reference, Swagger UI over ``/api/openapi.json``.

Public, like the document it shows: it holds no data, and an integrator with only an API token (no console
account) is who needs it most. Signed in, the console's navbar is shown. Swagger UI is served from our own
origin (sdr_console/web/assets.py VENDOR) and started by sdr_console/static/api-docs.js: scripts stay 'self'
only; the one relaxation is ``style-src 'unsafe-inline'``, for the styles Swagger UI sets on its own elements.
"""

from __future__ import annotations

from aiohttp import web

from sdr_console.api.openapi import PATH as OPENAPI_PATH
from sdr_console.api.spec import PUBLIC, api_spec
from sdr_console.web.guard import load_signed_in
from sdr_console.web.render import render

PATH = "/api/docs"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'")


@api_spec("API 文档页面（Swagger UI，HTML）", auth=PUBLIC, content_type="text/html", tags=("docs",))
async def api_docs(request: web.Request) -> web.StreamResponse:
    current = await load_signed_in(request)
    response = render(request, "api_docs.html", title="API 文档", nav=PATH, spec_url=OPENAPI_PATH,
                      user=current.user if current else None, csrf=current.session.csrf if current else None)
    response.headers["Content-Security-Policy"] = CSP
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, api_docs)
