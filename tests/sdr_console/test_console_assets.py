"""The console's static files: an allow-list of npm packages' files from node_modules, its own CSS, and pages
that still work when `npm ci` was never run."""

from __future__ import annotations

import logging

from bot.keys import ENGINE
from sdr_console.web.assets import SOURCE_NODE_MODULES, VENDOR
from tests.sdr_console.console_support import make_user, sign_in


async def test_vendor_files_are_served_from_node_modules_by_allow_list(app_client) -> None:
    assert all((SOURCE_NODE_MODULES / rel).is_file() for rel in VENDOR.values()), "run `npm ci` first"
    client = await app_client()
    page = await (await client.get("/console/login")).text()
    for name in ("vendor/bootstrap/bootstrap.min.css", "vendor/htmx/htmx.min.js", "console.css"):
        assert f"/console/static/{name}" in page
        resp = await client.get(f"/console/static/{name}")
        assert resp.status == 200, name
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get("/console/static/vendor/weui/weui.min.css")).status == 200
    for path in ("vendor/bootstrap/package.json", "vendor/../../package.json", "vendor/htmx.org/dist/htmx.js",
                 "../templates/base.html", "%2e%2e/pages/login.py"):
        assert (await client.get(f"/console/static/{path}")).status == 404, path


async def test_without_node_modules_the_console_still_works(app_client, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sdr_console.web.assets")
    client = await app_client(console={"assets_dir": str(tmp_path)})
    assert "run `npm ci`" in caplog.text
    await make_user(client.server.app[ENGINE], "ma")
    page = await (await client.get("/console/login")).text()
    assert "vendor/" not in page and "/console/static/console.css" in page
    assert (await sign_in(client, "ma")).status == 303
    assert (await client.get("/console/")).status == 200
    assert (await client.get("/console/static/vendor/htmx/htmx.min.js")).status == 404
