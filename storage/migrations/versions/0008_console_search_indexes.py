"""console search indexes: trigram fragment and phone-suffix search, the lead list's filters, the timeline

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00

The plain column indexes are in storage/models.py and made on every backend. The trigram, expression and partial
indexes exist on PostgreSQL only (SQLite has no pg_trgm, and at its sizes no need for the rest); they are named in
``POSTGRESQL_ONLY_INDEXES``, which tests/storage/test_migrations_match_models.py reads: it ignores exactly these
when comparing the migrated schema with the models, and checks that PostgreSQL has them.
"""
from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_LIVE = "WHERE merged_into_id IS NULL AND erased_at IS NULL"
# name -> (table, definition after "ON table"). profile is `json`, so ->> gives text for gin_trgm_ops.
POSTGRESQL_ONLY_INDEXES: dict[str, tuple[str, str]] = {
    # ILIKE '%fragment%' on the name and the company (fragments of 3 characters or more use them).
    'ix_leads_display_name_trgm': ('leads', "USING gin (display_name gin_trgm_ops)"),
    'ix_leads_company_trgm': ('leads', "USING gin ((profile ->> 'company') gin_trgm_ops)"),
    # "the last 4 digits of the phone" is `value LIKE '%1234'` (storage/repos/lead_search.py): a trigram index
    # serves a leading wildcard. Not partial (WHERE kind = 'phone'): the query's kind is a bound parameter,
    # which a generic prepared plan cannot match against an index predicate.
    'ix_identities_value_trgm': ('identities', "USING gin (value gin_trgm_ops)"),
    # Every list query keeps to live leads (not merged, not erased). Partial indexes on exactly that let the
    # list's capped count (up to 10,001 rows) and its pages run as index-only scans instead of visiting a heap
    # page per lead: the count of stage=mql on 1M leads went from 234 ms to 2.5 ms. The predicate has no
    # parameter, so generic prepared plans use them too.
    'ix_leads_live_last_activity_at': ('leads', f"(last_activity_at) {_LIVE}"),
    'ix_leads_live_stage_last_activity_at': ('leads', f"(stage, last_activity_at) {_LIVE}"),
    'ix_leads_live_owner_last_activity_at': ('leads', f"(owner_user_id, last_activity_at) {_LIVE}"),
    'ix_leads_live_consent_last_activity_at': ('leads', f"(consent, last_activity_at) {_LIVE}"),
    'ix_leads_live_created_at': ('leads', f"(created_at) {_LIVE}"),
}
_PLAIN: tuple[tuple[str, str, list[str]], ...] = (
    ('ix_lead_scores_quadrant_lead_id', 'lead_scores', ['quadrant', 'lead_id']),
    ('ix_lead_scores_ability_motivation', 'lead_scores', ['ability', 'motivation']),
    ('ix_lead_tags_tag_lead_id', 'lead_tags', ['tag', 'lead_id']),
    ('ix_touchpoints_channel_lead_id', 'touchpoints', ['channel', 'lead_id']),
    ('ix_touchpoints_scene_lead_id', 'touchpoints', ['scene', 'lead_id']),
    ('ix_outbox_lead_id_created_at', 'outbox', ['lead_id', 'created_at']),
)


def upgrade() -> None:
    for name, table, columns in _PLAIN:
        op.create_index(name, table, columns, unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for name, (table, definition) in POSTGRESQL_ONLY_INDEXES.items():
            op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in POSTGRESQL_ONLY_INDEXES:
            op.execute(f'DROP INDEX IF EXISTS {name}')
        # pg_trgm stays: other objects (or people) may use it, and it holds no data.
    for name, table, _ in reversed(_PLAIN):
        op.drop_index(name, table_name=table)
