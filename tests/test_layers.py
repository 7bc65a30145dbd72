"""Keys that don't drag: the console reads app keys without importing the inbox, the fast lane, the outbox
sender, the callback ingress or wechatpy (import-linter checks the static graph; this checks what runs)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("bot.inbox", "bot.ingress", "bot.outbox", "bot.dispatch", "wechatpy", "handlers")

LOADED = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after_importing(*names: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", LOADED, json.dumps(names)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out))


def dragged(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY) and m.split(".")[0] in {"bot", "wechatpy", "handlers"})


def test_reading_app_keys_imports_no_service() -> None:
    assert dragged(loaded_after_importing("bot.keys")) == []


def test_the_console_imports_no_inbox_outbox_or_ingress() -> None:
    console = [m.name for m in pkgutil.walk_packages([str(ROOT / "sdr_console")], prefix="sdr_console.")]
    assert len(console) >= 5
    assert dragged(loaded_after_importing(*console)) == []


def test_the_check_sees_a_drag() -> None:
    # The same probe on the app itself must find the services, or the tests above prove nothing.
    assert "bot.inbox.processor" in dragged(loaded_after_importing("bot.app"))
