"""``[console]``: the SDR console's browser sessions (sdr_console/web/sessions.py) and where its front-end
packages are read from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config.validate import check

if TYPE_CHECKING:
    from bot.config.core import Config

MAX_SESSION_S = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    # A session ends after this long without a request (a working day with a lunch break fits in 8 h) ...
    session_idle_s: int = 8 * 3600
    # ... and this long after sign-in whatever happens: a stolen cookie is worth a week at most.
    session_max_s: int = 7 * 24 * 3600
    # The npm packages of package.json (`npm ci`): empty = node_modules beside the source checkout.
    assets_dir: str = ""


def validate_console(config: Config) -> None:
    c = config.console
    check(1 <= c.session_idle_s <= MAX_SESSION_S, "console.session_idle_s", f"must be between 1 and {MAX_SESSION_S}")
    check(1 <= c.session_max_s <= MAX_SESSION_S, "console.session_max_s", f"must be between 1 and {MAX_SESSION_S}")
    check(c.session_idle_s <= c.session_max_s, "console.session_idle_s", "must not exceed console.session_max_s")
