"""The one set of checks every config section uses: each failure is a ConfigError naming the offending key."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Any

from bot.errors import ConfigError


def check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


def table(key: str, value: Any) -> dict[str, Any]:
    check(isinstance(value, dict), key, "must be a table")
    return value


def tables(key: str, value: Any) -> list[Any]:
    check(isinstance(value, list), key, "must be an array of tables")
    return value


def known_keys(key: str, entry: Any, known: tuple[str, ...]) -> dict[str, Any]:
    table(key, entry)
    for name in entry:
        check(name in known, f"{key}.{name}", f"unknown key; known: {', '.join(known)}")
    return entry


def string(key: str, value: Any) -> str:
    check(isinstance(value, str), key, f"must be a string, got {value!r}")
    return value


def text(key: str, value: Any) -> str:
    """A required, non-blank string, stripped."""
    check(value is not None, key, "is required")
    check(bool(string(key, value).strip()), key, "must not be empty")
    return value.strip()


def str_list(key: str, value: Any) -> list[str]:
    ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
    check(ok, key, "must be a list of non-empty strings")
    return value


def str_map(key: str, value: Any) -> dict[str, str]:
    table(key, value)
    for name, item in value.items():
        check(isinstance(item, str) and bool(item), f"{key}.{name}", "must be a non-empty string")
    return dict(value)


def integer(key: str, value: Any, minimum: int | None = None) -> int:
    check(value is not None, key, "is required")
    check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {value!r}")
    check(minimum is None or value >= minimum, key, f"must be at least {minimum}")
    return value


def number(key: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    check(ok, key, f"must be a number, got {value!r}")
    return float(value)


def unique(key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        check(value not in seen, key, f"duplicate id {value!r}")
        seen.add(value)


def build_section(name: str, cls: type, raw: Any) -> Any:
    """A flat section into its frozen dataclass: unknown keys refused, required ones demanded, types coerced."""
    table(name, raw)
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        check(key in known, f"{name}.{key}", "unknown key")
    values: dict[str, Any] = {}
    for key, spec in known.items():
        if key not in raw:
            required = spec.default is MISSING and spec.default_factory is MISSING
            check(not required, f"{name}.{key}", "is required")
            continue
        values[key] = coerce(f"{name}.{key}", spec.type, raw[key])
    return cls(**values)


def coerce(key: str, type_name: Any, value: Any) -> Any:
    expected = str(type_name)
    if expected == "bool":
        check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if expected == "int":
        return integer(key, value)
    if expected == "float":
        check(isinstance(value, int | float) and not isinstance(value, bool), key, f"must be a number, got {value!r}")
        return float(value)
    if expected == "str":
        return string(key, value)
    if expected.startswith("tuple[str"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        check(ok, key, "must be a list of strings")
        return tuple(value)
    raise ConfigError(key, f"unsupported type {expected}")  # pragma: no cover - schema bug
