"""``server.secret_key``: one key or several (the first signs and encrypts, all verify and decrypt).

In TOML a string or an array of strings; in the environment ``LEADRELAY_SERVER__SECRET_KEY=new,old`` (keys
separated by commas, which no generated key contains) or a TOML array literal. ``live`` mode refuses to start
without one. Sandbox without one gets a random key for this process only, with a warning: its links and form
cookies stop working when it restarts and are not understood by another process.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from bot.crypto.strength import GENERATE, key_problem
from bot.errors import ConfigError

KEY = "server.secret_key"
SEPARATOR = ","
log = logging.getLogger(__name__)


def parse_secret_keys(value: Any) -> list[str]:
    """The configured value as a list of keys (empty: none configured)."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(SEPARATOR) if k.strip()]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value if k.strip()]
    raise ConfigError(KEY, f"must be a string or a list of strings (several keys: comma-separated); "
                           f"generate one with {GENERATE}")


def resolve_secret_keys(keys: tuple[str, ...], *, live: bool, other_secrets: Iterable[str]) -> tuple[str, ...]:
    """Check every key; without any, sandbox gets an ephemeral key (live mode is refused by require_in_live)."""
    others = {s for s in other_secrets if s}
    for index, key in enumerate(keys, start=1):
        which = "" if len(keys) == 1 else f" (key {index} of {len(keys)})"
        problem = key_problem(key)
        if problem is not None:
            raise ConfigError(KEY, problem + which)
        if key in others:
            raise ConfigError(KEY, f"must not reuse another secret of the config (wechat.token...){which}")
    if len(set(keys)) != len(keys):
        raise ConfigError(KEY, "lists the same key twice")
    if keys or live:
        return keys  # live without a key: refused by require_in_live, after the other live-mode checks
    log.warning("server.secret_key is not set: this process uses a random key of its own, so its tracked links "
                "and form cookies stop working when it restarts and other processes reject them. Set "
                "server.secret_key (required in live mode).")
    return (secrets.token_urlsafe(48),)


def require_in_live(keys: tuple[str, ...], live: bool) -> None:
    if live and not keys:
        raise ConfigError(KEY, f"is required in live mode (it signs links and form cookies); generate one with "
                               f"{GENERATE}")
