"""trust: duplicate suggestions, identity tombstones, submission keys, identity values fit a 254-char email

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
# (table, column) pairs that hold an identity value, widened from 200 to 320 characters.
_VALUE_COLUMNS = (('identities', 'value'), ('lead_merges', 'identity_value'), ('merge_conflicts', 'identity_value'))


def upgrade() -> None:
    op.create_table('duplicate_suggestions',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('lead_id', _ID, nullable=False),
    sa.Column('other_lead_id', _ID, nullable=False),
    sa.Column('identity_kind', sa.String(length=24), nullable=False),
    sa.Column('identity_value', sa.String(length=320), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('resolved_at', UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_duplicate_suggestions_lead_id_leads')),
    sa.ForeignKeyConstraint(['other_lead_id'], ['leads.id'],
                            name=op.f('fk_duplicate_suggestions_other_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_suggestions')),
    sa.UniqueConstraint('lead_id', 'other_lead_id', 'identity_kind', 'identity_value',
                        name=op.f('uq_duplicate_suggestions_lead_id_other_lead_id_identity_kind_identity_value')),
    )
    with op.batch_alter_table('duplicate_suggestions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_suggestions_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_suggestions_other_lead_id'), ['other_lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_suggestions_status'), ['status'], unique=False)
    op.create_table('identity_tombstones',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('erased_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_identity_tombstones')),
    )
    op.create_table('submission_keys',
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('lead_id', _ID, nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_submission_keys_lead_id_leads')),
    sa.PrimaryKeyConstraint('key_hash', name=op.f('pk_submission_keys')),
    )
    with op.batch_alter_table('submission_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_keys_lead_id'), ['lead_id'], unique=False)
    for table, column in _VALUE_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=200), type_=sa.String(length=320),
                                  existing_nullable=False)


def downgrade() -> None:
    for table, column in _VALUE_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=320), type_=sa.String(length=200),
                                  existing_nullable=False)
    with op.batch_alter_table('submission_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_keys_lead_id'))
    op.drop_table('submission_keys')
    op.drop_table('identity_tombstones')
    with op.batch_alter_table('duplicate_suggestions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duplicate_suggestions_status'))
        batch_op.drop_index(batch_op.f('ix_duplicate_suggestions_other_lead_id'))
        batch_op.drop_index(batch_op.f('ix_duplicate_suggestions_lead_id'))
    op.drop_table('duplicate_suggestions')
