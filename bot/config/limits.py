"""What bounds a client: ``[rate_limits]`` on the public endpoints, and the ``[server]`` keys for connection
deadlines and trusted proxies (their fields live in ServerConfig; their checks are here, with the limits').

A rate is written ``"count/window"``: ``"600/1m"`` is at most 600 requests a minute, ``"5/30s"``, ``"100/1h"``
(the window may be fractional: ``"3/0.5s"``); ``"off"`` turns that one limit off.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from bot.config.validate import check
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.config.core import Config

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|m|h)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
MAX_WINDOW_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    window_s: float


def parse_rate(key: str, value: str) -> Rate | None:
    """``"600/1m"`` into Rate(600, 60.0); ``"off"`` into None. A ConfigError names ``key`` otherwise."""
    if value.strip().lower() == "off":
        return None
    match = _RATE.match(value)
    check(match is not None, key, f'must be "count/window" like "30/1m", "5/10s" or "100/1h", or "off"; '
                                  f"got {value!r}")
    assert match is not None
    count, amount, unit = int(match[1]), float(match[2] or 1), match[3]
    window = amount * _UNIT_S[unit]
    check(count >= 1, key, "the count must be at least 1 (write \"off\" for no limit)")
    check(0.1 <= window <= MAX_WINDOW_S, key, "the window must be between 0.1 s and 24 h")
    return Rate(count, window)


@dataclass(frozen=True, slots=True)
class RateLimitsConfig:
    """Per client IP (generous: a whole office or event venue can share one NAT address) and per WeChat user
    (tighter). Shared by every process through Redis. WeChat's callbacks and the console API are never limited."""

    enabled: bool = True
    form_pages_per_ip: str = "600/1m"  # GET /f/<form>: the H5 pages and WeChat's OAuth returns
    form_posts_per_ip: str = "120/1m"  # POST /f/<form>
    form_posts_per_openid: str = "10/1m"  # POST /f/<form> from one WeChat user (the OpenID bound by OAuth)
    mp_login_per_ip: str = "300/1m"  # POST /api/mp/login
    mp_login_per_openid: str = "20/1m"  # the same, per mini-program user (counted once WeChat names them)
    mp_forms_per_ip: str = "600/1m"  # GET|POST /api/mp/forms/<form>
    mp_forms_per_openid: str = "30/1m"  # the same, per mini-program user
    links_per_ip: str = "600/1m"  # GET /c/<token>
    links_per_recipient: str = "60/1m"  # one recipient's tracked links (a forwarded link counts for them)
    console_login_per_ip: str = "30/1m"  # POST /console/login: an office shares one address
    # Sign-in attempts naming one user, wherever from: guessing one password is slowed to a crawl (the price: a
    # stranger can make a known user wait out the window; the per-IP limit bounds how many they can do that to).
    console_login_per_user: str = "10/10m"

    def rate(self, name: str) -> Rate | None:
        """The limit a key sets; None when it is "off" or rate limiting is disabled."""
        if not self.enabled:
            return None
        return parse_rate(f"rate_limits.{name}", getattr(self, name))


def validate_limits(config: Config) -> None:
    limits = config.rate_limits
    for spec in fields(limits):
        if spec.name != "enabled":
            parse_rate(f"rate_limits.{spec.name}", getattr(limits, spec.name))
    server = config.server
    for key, value, top in (("header_timeout_s", server.header_timeout_s, 3600.0),
                            ("body_timeout_s", server.body_timeout_s, 3600.0),
                            ("keepalive_timeout_s", server.keepalive_timeout_s, 86_400.0)):
        check(0 < value <= top, f"server.{key}", f"must be more than 0 and at most {top:g} (seconds)")
    for entry in server.trusted_proxies:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError as exc:
            raise ConfigError("server.trusted_proxies", f"{entry!r} is not an IP address or network (CIDR)") from exc
