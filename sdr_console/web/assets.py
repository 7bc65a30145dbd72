"""The console's static files: its own (sdr_console/static) and an allow-list of npm packages' files.

The npm packages (package.json at the repository root, installed by ``npm ci``) are served from node_modules,
never from a CDN, and only the files named in VENDOR: the rest of node_modules (sources, maps, package
manifests) stays unreachable. Without node_modules the console still works, unstyled by the toolkit and without
htmx; the start-up says so once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)
PREFIX = "/console/static/"
OWN_DIR = Path(__file__).resolve().parent.parent / "static"
SOURCE_NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
# URL (under /console/static/vendor/) -> file under node_modules. Keep in step with package.json.
VENDOR = {
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "htmx/htmx.min.js": "htmx.org/dist/htmx.min.js",
    # Sends an htmx form as a JSON body: the console's forms call the JSON API (sdr_console/api/) directly.
    "htmx/json-enc.js": "htmx-ext-json-enc/dist/json-enc.js",
    # The browsable API page (/api/docs) over /api/openapi.json.
    "swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "weui/weui.min.css": "weui/dist/style/weui.min.css",
}
CACHE = "public, max-age=3600"


@dataclass(frozen=True, slots=True)
class Assets:
    files: dict[str, Path]  # URL path under /console/static/ -> file on disk
    vendor: frozenset[str]  # the VENDOR entries present, for templates to link only what exists

    def url(self, name: str) -> str:
        return PREFIX + name


def find_assets(assets_dir: str) -> Assets:
    modules = Path(assets_dir) if assets_dir else SOURCE_NODE_MODULES
    files = {p.relative_to(OWN_DIR).as_posix(): p for p in OWN_DIR.rglob("*") if p.is_file()}
    present = {name: modules / rel for name, rel in VENDOR.items() if (modules / rel).is_file()}
    missing = sorted(set(VENDOR) - set(present))
    if missing:
        log.warning("console front-end packages missing under %s (%s): run `npm ci`; pages are served without them",
                    modules, ", ".join(missing))
    files |= {f"vendor/{name}": path for name, path in present.items()}
    return Assets(files=files, vendor=frozenset(present))


ASSETS = web.AppKey("console_assets", Assets)


async def static_file(request: web.Request) -> web.StreamResponse:
    path = request.app[ASSETS].files.get(request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound(text="文件不存在")
    return web.FileResponse(path, headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"})
