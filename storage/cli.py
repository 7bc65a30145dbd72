"""Database commands behind ``leadrelay db``."""

from __future__ import annotations

from bot.config import Config
from storage.db import create_engine
from storage.migrate import upgrade


async def db_upgrade(config: Config) -> None:
    engine = create_engine(config.database)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
