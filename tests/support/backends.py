"""The two backends every storage test runs on, and where the production one's services live.

"embedded" is SQLite + in-process Redis (``memory://``); "production" is a PostgreSQL database created for
this run + the real Redis server. The fixtures that build them are in tests/support/fixtures.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PG_ADMIN_DSN = os.environ.get("LEADRELAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LEADRELAY_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"  # then an unreachable service fails the run, never skips


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str
    redis_prefix: str

    @property
    def is_production(self) -> bool:
        return self.name == "production"
