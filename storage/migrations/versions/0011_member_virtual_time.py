"""team members: the round robin's virtual time replaces the credit balance

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:00:00

Routing now changes only the chosen member's row (leads/routing.py), so concurrent routings in one team lock one
member each instead of the whole team. The old balances mean something else: every member starts level.
"""
from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # RENAME COLUMN: PostgreSQL, and SQLite since 3.25 (no table rebuild).
    op.execute("ALTER TABLE team_members RENAME COLUMN credit TO virtual_time")
    op.execute("UPDATE team_members SET virtual_time = 0")


def downgrade() -> None:
    op.execute("ALTER TABLE team_members RENAME COLUMN virtual_time TO credit")
    op.execute("UPDATE team_members SET credit = 0")
