"""What storage needs to know to connect: the ``[database]`` and ``[redis]`` sections (validated by bot/config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///leadrelay.db"
    pool_size: int = 10
    echo: bool = False


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str = "memory://"
    key_prefix: str = "leadrelay:"
