"""The migrations build exactly the schema the models describe (alembic's autogenerate finds nothing to do)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Base

_VERSIONS = Path(__file__).resolve().parents[2] / "storage/migrations/versions"


def postgresql_only_indexes() -> dict[str, tuple[str, str]]:
    """Trigram, expression and partial indexes the models cannot state for both backends: each migration that
    makes some names them in its POSTGRESQL_ONLY_INDEXES (name -> (table, definition))."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(_VERSIONS.glob("[0-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found |= getattr(module, "POSTGRESQL_ONLY_INDEXES", {})
    return found


def _is_listed_index(change: object, names: dict[str, tuple[str, str]]) -> bool:
    return isinstance(change, tuple) and change[0] == "remove_index" and change[1].name in names


async def test_migrated_schema_equals_the_models(engine: AsyncEngine) -> None:
    pg_only = postgresql_only_indexes()

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    def indexes(sync_conn):  # type: ignore[no-untyped-def]
        found = inspect(sync_conn)
        return {(table, ix["name"]) for table in {t for t, _ in pg_only.values()} for ix in found.get_indexes(table)}

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
        present = await conn.run_sync(indexes)
    assert [c for c in changes if not _is_listed_index(c, pg_only)] == []
    expected = {(table, name) for name, (table, _) in pg_only.items()}
    if engine.dialect.name == "postgresql":
        assert expected <= present  # the list names indexes that exist, so ignoring them hides nothing else
    else:
        assert not expected & present
