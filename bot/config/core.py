"""Configuration: one TOML file, overridden by LEADRELAY_<SECTION>__<KEY> variables, validated once.

Every problem is reported as a ConfigError naming the offending key, so start-up fails fast and says why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot.config.capture import CAPTURE_SECTIONS, CaptureConfig, build_capture, validate_capture
from bot.config.scoring import ScoringConfig, build_scoring, default_scoring
from bot.errors import ConfigError
from storage.settings import DatabaseConfig, RedisConfig

ENV_PREFIX = "LEADRELAY_"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    # Signs tracked links and session tokens; every process must share it. Empty: derived from wechat.token.
    secret_key: str = ""


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
    process_batch: int = 32
    fast_lane_ms: int = 50


@dataclass(frozen=True, slots=True)
class ApiConfig:
    tokens: tuple[str, ...] = ()


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
    channels: Mapping[str, ChannelSource] = field(default_factory=dict)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    scoring: ScoringConfig = field(default_factory=default_scoring)

    @property
    def signing_key(self) -> bytes:
        if self.server.secret_key:
            return self.server.secret_key.encode()
        return hashlib.sha256(b"leadrelay-signing:" + self.wechat.token.encode()).digest()


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "redis": RedisConfig,
    "wechat": WeChatConfig,
    "wecom": WeComConfig,
    "callback": CallbackConfig,
    "inbox": InboxConfig,
    "api": ApiConfig,
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
    return build_config(raw)


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
    unknown = set(raw) - set(_SECTIONS) - {"channels", "scoring", *CAPTURE_SECTIONS}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown section")
    if "wechat" not in raw:
        raise ConfigError("wechat", "section is required")
    sections = {name: build_section(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    channels = _build_channels(raw.get("channels", {}))
    config = Config(channels=channels, capture=build_capture(dict(raw)), scoring=build_scoring(raw.get("scoring")),
                    **sections)
    _validate(config)
    validate_capture(config.capture)
    return config


def build_section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table")
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"{name}.{key}", "unknown key")
    values: dict[str, Any] = {}
    for key, spec in known.items():
        if key not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{name}.{key}", "is required")
            continue
        values[key] = _coerce(f"{name}.{key}", spec.type, table[key])
    return cls(**values)


def _coerce(key: str, type_name: Any, value: Any) -> Any:
    expected = str(type_name)
    if expected == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if expected == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if expected == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if expected == "str":
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if expected.startswith("tuple[str"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, "must be a list of strings")
        return tuple(value)
    raise ConfigError(key, f"unsupported type {expected}")  # pragma: no cover - schema bug


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


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


def _check_url(key: str, value: str, schemes: tuple[str, ...]) -> None:
    parsed = urlparse(value)
    _check(parsed.scheme in schemes, key, f"must be a URL with scheme {' or '.join(schemes)}, got {value!r}")


def _check_aes_key(key: str, value: str) -> None:
    if not value:
        return
    _check(len(value) == 43, key, "must be the 43-character EncodingAESKey (or empty for plaintext mode)")
    try:
        decoded = base64.b64decode(value + "=", validate=True)
    except binascii.Error as exc:
        raise ConfigError(key, "is not valid base64") from exc
    _check(len(decoded) == 32, key, "must decode to 32 bytes")


def _validate(c: Config) -> None:
    _check(1 <= c.server.port <= 65535, "server.port", "must be between 1 and 65535")
    _check_url("server.public_url", c.server.public_url, ("http", "https"))
    _check(c.server.max_body_bytes > 0, "server.max_body_bytes", "must be positive")
    _check(
        c.database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
        "database.url",
        "must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
    )
    _check(c.database.pool_size >= 1, "database.pool_size", "must be at least 1")
    _check_url("redis.url", c.redis.url, ("memory", "redis", "rediss", "unix"))
    _check(bool(c.wechat.app_id), "wechat.app_id", "must not be empty")
    _check(bool(c.wechat.token), "wechat.token", "must not be empty")
    _check(c.wechat.mode in ("sandbox", "live"), "wechat.mode", "must be \"sandbox\" or \"live\"")
    _check(c.wechat.mode == "sandbox" or bool(c.wechat.app_secret), "wechat.app_secret",
           "is required in live mode")
    _check_url("wechat.api_base_url", c.wechat.api_base_url, ("http", "https"))
    _check_aes_key("wechat.encoding_aes_key", c.wechat.encoding_aes_key)
    if c.wecom.enabled:
        _check(bool(c.wecom.token), "wecom.token", "is required when wecom.corp_id is set")
        _check(bool(c.wecom.encoding_aes_key), "wecom.encoding_aes_key",
               "is required when wecom.corp_id is set (WeCom callbacks are always encrypted)")
        _check_aes_key("wecom.encoding_aes_key", c.wecom.encoding_aes_key)
        _check_url("wecom.api_base_url", c.wecom.api_base_url, ("http", "https"))
    _check(c.callback.max_timestamp_skew_s >= 0, "callback.max_timestamp_skew_s", "must be 0 or more")
    _check(0 < c.callback.reply_budget_ms < 4500, "callback.reply_budget_ms",
           "must be between 1 and 4499 (WeChat gives up after 5 s)")
    _check(c.inbox.max_batch >= 1, "inbox.max_batch", "must be at least 1")
    _check(c.inbox.flushers >= 1, "inbox.flushers", "must be at least 1")
    _check(c.inbox.workers >= 0, "inbox.workers", "must be 0 or more")
    _check(c.inbox.max_attempts >= 1, "inbox.max_attempts", "must be at least 1")
    _check(0 <= c.inbox.defer_max_ms <= 60_000, "inbox.defer_max_ms", "must be between 0 and 60000")
    _check(1 <= c.inbox.process_batch <= 1_000, "inbox.process_batch", "must be between 1 and 1000")
    _check(0 <= c.inbox.fast_lane_ms <= 10_000, "inbox.fast_lane_ms", "must be between 0 and 10000")
    _check(all(c.api.tokens), "api.tokens", "must not contain empty tokens")
    _check(not c.server.secret_key or len(c.server.secret_key) >= 16, "server.secret_key",
           "must be at least 16 characters (or empty to derive it from wechat.token)")

