"""Configuration: one TOML file, overridden by LEADRELAY_<SECTION>__<KEY> variables, validated once.

Every problem is reported as a ConfigError naming the offending key, so start-up fails fast and says why.
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot.config.bant import BantConfig, validate_bant
from bot.config.capture import CAPTURE_SECTIONS, CaptureConfig, build_capture, validate_capture
from bot.config.console import ConsoleConfig, validate_console
from bot.config.handoff import (
    CrmConfig,
    HandoffConfig,
    RoutingConfig,
    SlaConfig,
    build_routing,
    build_sla,
    validate_handoff,
)
from bot.config.journeys import (
    BatchConfig,
    NurtureConfig,
    build_batch,
    build_journeys,
    build_nurture,
    validate_journeys,
)
from bot.config.limits import RateLimitsConfig, validate_limits
from bot.config.scoring import ScoringConfig, build_scoring, default_scoring
from bot.config.secret_keys import parse_secret_keys, require_in_live, resolve_secret_keys
from bot.config.validate import build_section, check
from bot.crypto.keyring import KeyRing, keyring_for
from bot.errors import ConfigError
from leads.journeys.definition import Journey
from storage.settings import DatabaseConfig, RedisConfig

ENV_PREFIX = "LEADRELAY_"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    # Signs and encrypts links, form cookies and session hashes; every process must share it. The first key
    # signs, all verify (rotation). See bot/config/secret_keys.py: required live, ephemeral in sandbox.
    secret_key: tuple[str, ...] = ()
    # Connection deadlines (bot/serving/deadlines.py): a request's head, then its whole body, must arrive in time.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    keepalive_timeout_s: float = 75.0  # idle between requests; above nginx's upstream keepalive_timeout (60 s)
    # Peers whose X-Forwarded-For / X-Real-IP name the client (bot/limits/client_ip.py); IPs or CIDR networks.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class WeChatConfig:
    app_id: str
    token: str
    app_secret: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://api.weixin.qq.com"
    mode: str = "sandbox"


@dataclass(frozen=True, slots=True)
class WeComConfig:
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    contact_secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://qyapi.weixin.qq.com"

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id)


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    max_timestamp_skew_s: int = 300
    reply_budget_ms: int = 1500


@dataclass(frozen=True, slots=True)
class InboxConfig:
    """Durable inbox: group commit of accepted callbacks, and the after-ack processor."""

    max_batch: int = 256
    flushers: int = 2
    workers: int = 4
    sweep_interval_s: float = 2.0
    sweep_grace_s: float = 3.0
    max_attempts: int = 8
    defer_max_ms: int = 1000
    process_batch: int = 64
    fast_lane_ms: int = 50


@dataclass(frozen=True, slots=True)
class ApiConfig:
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Periodic work (bot/jobs): which jobs this process schedules, and the cluster-wide jobs' leader lock."""

    enabled: tuple[str, ...] | None = None  # job names; None (the key left out): every job
    leader_ttl_s: float = 30.0  # the lock a dead leader holds expires after this; renewed every third of it
    shutdown_wait_s: float = 30.0  # on shutdown, how long a running job may take to finish before it is cancelled


@dataclass(frozen=True, slots=True)
class ChannelSource:
    channel: str
    scene: str


@dataclass(frozen=True, slots=True)
class Config:
    wechat: WeChatConfig
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)
    callback: CallbackConfig = field(default_factory=CallbackConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    channels: Mapping[str, ChannelSource] = field(default_factory=dict)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    scoring: ScoringConfig = field(default_factory=default_scoring)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    bant: BantConfig = field(default_factory=BantConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    crm: CrmConfig = field(default_factory=CrmConfig)
    handoff: HandoffConfig = field(default_factory=HandoffConfig)
    journeys: tuple[Journey, ...] = ()
    nurture: NurtureConfig = field(default_factory=NurtureConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)

    @property
    def keyring(self) -> KeyRing:
        """server.secret_key's subkeys, one per purpose (bot/crypto/keyring.py)."""
        return keyring_for(self.server.secret_key)


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "redis": RedisConfig,
    "wechat": WeChatConfig,
    "wecom": WeComConfig,
    "callback": CallbackConfig,
    "inbox": InboxConfig,
    "api": ApiConfig,
    "jobs": JobsConfig,
    "rate_limits": RateLimitsConfig,
    "console": ConsoleConfig,
    "bant": BantConfig,
    "crm": CrmConfig,
    "handoff": HandoffConfig,
}


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply environment overrides and validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("config", f"file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    _apply_env(raw, environ or {})
    _include_journeys(raw, Path(path).parent if path is not None else Path.cwd())
    return build_config(raw)


def _include_journeys(raw: dict[str, Any], base: Path) -> None:
    """``[nurture] journeys_file``: the [[journeys]] of another TOML file (relative to this one), before the
    config's own: the shipped examples can be used as they are and edited in one place."""
    nurture = raw.get("nurture")
    name = nurture.get("journeys_file") if isinstance(nurture, dict) else None
    if not name:
        return
    if not isinstance(name, str):
        raise ConfigError("nurture.journeys_file", "must be a file name")
    path = base / name
    try:
        included = tomllib.loads(path.read_text(encoding="utf-8")).get("journeys", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("nurture.journeys_file", f"cannot read {name}: {exc}") from exc
    if not isinstance(included, list):
        raise ConfigError("nurture.journeys_file", f"{name}: [[journeys]] must be an array of tables")
    own = raw.get("journeys", [])
    raw["journeys"] = [*included, *(own if isinstance(own, list) else [own])]


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if not section or not key:
            continue
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a table")
        table[key] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    """Numbers, booleans and lists are written as TOML literals; anything else is a plain string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def build_config(raw: Mapping[str, Any]) -> Config:
    unknown = set(raw) - set(_SECTIONS) - {"channels", "scoring", "routing", "sla", "journeys", "nurture", "batch",
                                           *CAPTURE_SECTIONS}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown section")
    if "wechat" not in raw:
        raise ConfigError("wechat", "section is required")
    server_raw = raw.get("server", {})
    if isinstance(server_raw, dict) and "secret_key" in server_raw:
        raw = {**raw, "server": {**server_raw, "secret_key": parse_secret_keys(server_raw["secret_key"])}}
    sections = {name: build_section(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    wechat, wecom = sections["wechat"], sections["wecom"]
    sections["server"] = replace(sections["server"], secret_key=resolve_secret_keys(
        sections["server"].secret_key, live=wechat.mode == "live",
        other_secrets=(wechat.token, wechat.app_secret, wechat.encoding_aes_key, wecom.token, wecom.secret,
                       wecom.contact_secret, wecom.encoding_aes_key, *sections["api"].tokens)))
    channels = _build_channels(raw.get("channels", {}))
    config = Config(channels=channels, capture=build_capture(dict(raw)), scoring=build_scoring(raw.get("scoring")),
                    routing=build_routing(raw.get("routing")), sla=build_sla(raw.get("sla")),
                    journeys=build_journeys(raw.get("journeys")), nurture=build_nurture(raw.get("nurture")),
                    batch=build_batch(raw.get("batch")), **sections)
    _validate(config)
    validate_limits(config)
    validate_console(config)
    validate_bant(config)
    validate_handoff(config.routing, config.sla, config.crm, config.handoff)
    validate_journeys(config.journeys, config.handoff.return_reasons,
                      webhook_secret=config.crm.webhook_secret if config.crm.webhook_url else "")
    validate_capture(config.capture)
    return config


def _build_channels(table: Any) -> dict[str, ChannelSource]:
    if not isinstance(table, dict):
        raise ConfigError("channels", "must be a table of code = {channel, scene}")
    out: dict[str, ChannelSource] = {}
    for code, entry in table.items():
        key = f"channels.{code}"
        if not isinstance(entry, dict) or set(entry) != {"channel", "scene"}:
            raise ConfigError(key, "must be a table with exactly the keys channel and scene")
        if not all(isinstance(v, str) and v for v in entry.values()):
            raise ConfigError(key, "channel and scene must be non-empty strings")
        out[str(code)] = ChannelSource(channel=entry["channel"], scene=entry["scene"])
    return out


def _check_url(key: str, value: str, schemes: tuple[str, ...]) -> None:
    parsed = urlparse(value)
    check(parsed.scheme in schemes, key, f"must be a URL with scheme {' or '.join(schemes)}, got {value!r}")


def _check_aes_key(key: str, value: str) -> None:
    if not value:
        return
    check(len(value) == 43, key, "must be the 43-character EncodingAESKey (or empty for plaintext mode)")
    try:
        decoded = base64.b64decode(value + "=", validate=True)
    except binascii.Error as exc:
        raise ConfigError(key, "is not valid base64") from exc
    check(len(decoded) == 32, key, "must decode to 32 bytes")


def _validate(c: Config) -> None:
    check(1 <= c.server.port <= 65535, "server.port", "must be between 1 and 65535")
    _check_url("server.public_url", c.server.public_url, ("http", "https"))
    check(c.server.max_body_bytes > 0, "server.max_body_bytes", "must be positive")
    check(
        c.database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
        "database.url",
        "must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
    )
    check(c.database.pool_size >= 1, "database.pool_size", "must be at least 1")
    _check_url("redis.url", c.redis.url, ("memory", "redis", "rediss", "unix"))
    check(bool(c.wechat.app_id), "wechat.app_id", "must not be empty")
    check(bool(c.wechat.token), "wechat.token", "must not be empty")
    check(c.wechat.mode in ("sandbox", "live"), "wechat.mode", "must be \"sandbox\" or \"live\"")
    check(c.wechat.mode == "sandbox" or bool(c.wechat.app_secret), "wechat.app_secret",
           "is required in live mode")
    require_in_live(c.server.secret_key, c.wechat.mode == "live")
    _check_url("wechat.api_base_url", c.wechat.api_base_url, ("http", "https"))
    _check_aes_key("wechat.encoding_aes_key", c.wechat.encoding_aes_key)
    if c.wecom.enabled:
        check(bool(c.wecom.token), "wecom.token", "is required when wecom.corp_id is set")
        check(bool(c.wecom.encoding_aes_key), "wecom.encoding_aes_key",
               "is required when wecom.corp_id is set (WeCom callbacks are always encrypted)")
        _check_aes_key("wecom.encoding_aes_key", c.wecom.encoding_aes_key)
        _check_url("wecom.api_base_url", c.wecom.api_base_url, ("http", "https"))
    check(c.callback.max_timestamp_skew_s >= 0, "callback.max_timestamp_skew_s", "must be 0 or more")
    check(0 < c.callback.reply_budget_ms < 4500, "callback.reply_budget_ms",
           "must be between 1 and 4499 (WeChat gives up after 5 s)")
    check(c.inbox.max_batch >= 1, "inbox.max_batch", "must be at least 1")
    check(c.inbox.flushers >= 1, "inbox.flushers", "must be at least 1")
    check(c.inbox.workers >= 0, "inbox.workers", "must be 0 or more")
    check(c.inbox.max_attempts >= 1, "inbox.max_attempts", "must be at least 1")
    check(0 <= c.inbox.defer_max_ms <= 60_000, "inbox.defer_max_ms", "must be between 0 and 60000")
    check(1 <= c.inbox.process_batch <= 1_000, "inbox.process_batch", "must be between 1 and 1000")
    check(0 <= c.inbox.fast_lane_ms <= 10_000, "inbox.fast_lane_ms", "must be between 0 and 10000")
    check(all(c.api.tokens), "api.tokens", "must not contain empty tokens")
    # Which names exist is the app's job registry's to say (bot/jobs/builtin.py); it checks them at start-up.
    enabled = c.jobs.enabled or ()
    check(all(enabled), "jobs.enabled", "must not contain empty names")
    check(len(set(enabled)) == len(enabled), "jobs.enabled", "must not name a job twice")
    check(c.jobs.leader_ttl_s >= 1, "jobs.leader_ttl_s", "must be at least 1 (second)")
    check(c.jobs.shutdown_wait_s >= 0, "jobs.shutdown_wait_s", "must be 0 or more")

