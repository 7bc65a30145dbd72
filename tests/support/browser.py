"""The ``playwright_api`` fixture: Playwright driving Debian's Chromium (no browser download).

Same rule as the database fixtures: CI must run the browser tests, a developer without Chromium or Playwright
may skip them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.backends import IN_CI

CHROMIUM = "/usr/bin/chromium"
# --lang: form controls (date pickers) follow the browser process language, as on a Chinese user's machine.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--lang=zh-CN"]


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
