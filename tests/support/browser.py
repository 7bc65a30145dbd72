"""The ``playwright_api`` fixture: Playwright driving Debian's Chromium (no browser download).

Same rule as the database fixtures: CI must run the browser tests, a developer without Chromium or Playwright
may skip them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: the browser test is required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def playwright_api() -> Any:
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed: {exc}")
    return async_playwright


# The console's users: a desktop browser in Chinese, on Beijing time.
DESKTOP = {"viewport": {"width": 1440, "height": 900}, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@asynccontextmanager
async def desktop_browser(playwright_api: Any, **options: Any) -> AsyncIterator[Any]:
    """A fresh Chromium context as DESKTOP (``options`` add to or override Playwright's ``new_context``
    arguments), the browser closed afterwards."""
    async with playwright_api() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_context(**{**DESKTOP, **options})
        finally:
            await browser.close()


# The mobile inbox's users: WeCom's built-in browser on a 375-px phone (/m/).
WECOM_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light")
MOBILE = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True,
          "has_touch": True, "user_agent": WECOM_UA, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


def mobile_browser(playwright_api: Any, **options: Any) -> Any:
    """``desktop_browser`` as MOBILE: the same Chromium, a phone's viewport and WeCom's user agent."""
    return desktop_browser(playwright_api, **{**MOBILE, **options})


def screenshots(backend: Any) -> Path:
    """Where a console browser test writes its screenshots (ignored by git; look at them)."""
    root = Path(os.environ.get("LEADRELAY_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
    shots = root / "console" / backend.name
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def signed_in_page(context: Any, base: str, username: str, password: str) -> tuple[Any, list[str]]:
    """A new page of ``context`` signed in to the console as ``username`` (on the start page), and the list that
    collects the page's console errors (failed resource loads aside) for the test to check at the end."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    await page.goto(f"{base}/console/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#stages")
    return page, errors
