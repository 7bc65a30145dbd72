"""the lead's scores on its row: a trigger-kept copy of lead_scores for the console list's filters and sorts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:20:00

"Quadrant = nurture, newest activity first" on a million leads cannot be served by any one index while the
quadrant lives in lead_scores and the activity in leads: PostgreSQL walked leads by activity and probed
lead_scores per row (250 ms for a page). With a copy on the lead row, partial indexes on (quadrant,
last_activity_at) and (motivation) answer it directly. The copy is kept by a trigger, not by each writer: four
code paths write lead_scores (the scorer, the decay refresh, two bulk recomputes, COPY in the bench seed) and a
trigger cannot be forgotten by a fifth. Every writer of lead_scores already holds the lead's row lock, so the
trigger's UPDATE of that row adds no new lock order.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_LIVE = "WHERE merged_into_id IS NULL AND erased_at IS NULL"
# Read by tests/storage/test_migrations_match_models.py (every migration's list): PostgreSQL-only partial indexes.
POSTGRESQL_ONLY_INDEXES: dict[str, tuple[str, str]] = {
    'ix_leads_live_quadrant_last_activity_at': ('leads', f"(quadrant, last_activity_at) {_LIVE}"),
    # In the list's own order (highest first, unscored last, ties by id): a page is the index's first rows.
    'ix_leads_live_motivation': ('leads', f"(motivation DESC NULLS LAST, id DESC) {_LIVE}"),
    'ix_leads_live_ability': ('leads', f"(ability DESC NULLS LAST, id DESC) {_LIVE}"),
    # A team's (or an owner's) leads of one consent state created in a period: without consent in the index,
    # two in three rows fetched from the heap were thrown away (team + consent + week: 217 ms -> 16 ms).
    'ix_leads_live_owner_consent_created_at': ('leads', f"(owner_user_id, consent, created_at) {_LIVE}"),
    # Name or company fragments of one or two characters have no trigram: they match from the start.
    'ix_leads_live_display_name_prefix': ('leads', f"(display_name text_pattern_ops) {_LIVE}"),
    'ix_leads_live_company_prefix': ('leads', f"((profile ->> 'company') text_pattern_ops) {_LIVE}"),
}

_NAMES = ('quadrant', 'ability', 'motivation')


def _columns() -> list[sa.Column]:
    return [sa.Column('quadrant', sa.String(length=20), nullable=True), sa.Column('ability', sa.Float(), nullable=True),
            sa.Column('motivation', sa.Float(), nullable=True)]


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION lead_scores_copy_to_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE leads SET quadrant = NULL, ability = NULL, motivation = NULL WHERE id = OLD.lead_id;
    RETURN NULL;
  END IF;
  UPDATE leads SET quadrant = NEW.quadrant, ability = NEW.ability, motivation = NEW.motivation
  WHERE id = NEW.lead_id AND (quadrant IS DISTINCT FROM NEW.quadrant OR ability IS DISTINCT FROM NEW.ability
                              OR motivation IS DISTINCT FROM NEW.motivation);
  RETURN NULL;
END $$"""
_PG_TRIGGER = """CREATE TRIGGER lead_scores_copy_to_lead
AFTER INSERT OR UPDATE OF ability, motivation, quadrant OR DELETE ON lead_scores
FOR EACH ROW EXECUTE FUNCTION lead_scores_copy_to_lead()"""
_COPY = ("UPDATE leads SET quadrant = NEW.quadrant, ability = NEW.ability, motivation = NEW.motivation "
         "WHERE id = NEW.lead_id;")
_SQLITE_TRIGGERS = {
    'lead_scores_copy_insert': f"AFTER INSERT ON lead_scores BEGIN {_COPY} END",
    'lead_scores_copy_update': f"AFTER UPDATE OF ability, motivation, quadrant ON lead_scores BEGIN {_COPY} END",
    'lead_scores_copy_delete': ("AFTER DELETE ON lead_scores BEGIN UPDATE leads SET quadrant = NULL, ability = NULL, "
                                "motivation = NULL WHERE id = OLD.lead_id; END"),
}


def upgrade() -> None:
    # Plain ADD / DROP COLUMN on both backends: a batch (copy-and-move) of leads on SQLite would drop the table
    # every other table references, which foreign keys refuse once there is data.
    for column in _columns():
        op.add_column('leads', column)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE leads SET quadrant = s.quadrant, ability = s.ability, motivation = s.motivation "
                   "FROM lead_scores AS s WHERE s.lead_id = leads.id")
    else:  # UPDATE ... FROM needs SQLite 3.33
        op.execute("UPDATE leads SET " + ", ".join(
            f"{c} = (SELECT s.{c} FROM lead_scores AS s WHERE s.lead_id = leads.id)" for c in _NAMES)
            + " WHERE id IN (SELECT lead_id FROM lead_scores)")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        for name, (table, definition) in POSTGRESQL_ONLY_INDEXES.items():
            op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}')
        # New columns have no statistics until autovacuum gets round to it: meanwhile the planner guesses a
        # third of the rows for any range and walks the activity index through all leads for a rare one.
        op.execute('ANALYZE leads')
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f'CREATE TRIGGER {name} {body}')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in POSTGRESQL_ONLY_INDEXES:
            op.execute(f'DROP INDEX IF EXISTS {name}')
        op.execute('DROP TRIGGER IF EXISTS lead_scores_copy_to_lead ON lead_scores')
        op.execute('DROP FUNCTION IF EXISTS lead_scores_copy_to_lead()')
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
    for name in reversed(_NAMES):
        op.execute(f'ALTER TABLE leads DROP COLUMN {name}')  # SQLite 3.35+: no table rebuild
