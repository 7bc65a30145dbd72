"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 23:43:37.453886
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('inbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('dedup_key', sa.String(length=400), nullable=False),
    sa.Column('msg_type', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=60), nullable=True),
    sa.Column('from_user', sa.String(length=128), nullable=False),
    sa.Column('create_time', sa.BigInteger(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=True),
    sa.Column('received_at', UTCDateTime(), nullable=False),
    sa.Column('processed_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_inbox_dedup_key'))
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_status_id', ['status', 'id'], unique=False)

    op.create_table('leads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('consent', sa.String(length=16), nullable=False),
    sa.Column('consent_updated_at', UTCDateTime(), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('last_activity_at', UTCDateTime(), nullable=False),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['merged_into_id'], ['leads.id'], name=op.f('fk_leads_merged_into_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_last_activity_at'), ['last_activity_at'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=80), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_idempotency_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('identities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('app', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_identities_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('kind', 'app', 'value', name=op.f('uq_identities_kind_app_value'))
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_lead_id'), ['lead_id'], unique=False)

    op.create_table('lead_merges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('survivor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merged_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('identity_kind', sa.String(length=24), nullable=False),
    sa.Column('identity_value', sa.String(length=200), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inbox.id'], name=op.f('fk_lead_merges_inbox_id_inbox')),
    sa.ForeignKeyConstraint(['merged_id'], ['leads.id'], name=op.f('fk_lead_merges_merged_id_leads')),
    sa.ForeignKeyConstraint(['survivor_id'], ['leads.id'], name=op.f('fk_lead_merges_survivor_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_merges'))
    )
    with op.batch_alter_table('lead_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_merges_merged_id'), ['merged_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_merges_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('lead_tags',
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_tags_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', 'tag', name=op.f('pk_lead_tags'))
    )
    op.create_table('merge_conflicts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('other_lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('identity_kind', sa.String(length=24), nullable=False),
    sa.Column('identity_value', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inbox.id'], name=op.f('fk_merge_conflicts_inbox_id_inbox')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_merge_conflicts_lead_id_leads')),
    sa.ForeignKeyConstraint(['other_lead_id'], ['leads.id'], name=op.f('fk_merge_conflicts_other_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merge_conflicts')),
    sa.UniqueConstraint('lead_id', 'other_lead_id', 'identity_kind', 'identity_value', name=op.f('uq_merge_conflicts_lead_id_other_lead_id_identity_kind_identity_value'))
    )
    with op.batch_alter_table('merge_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_conflicts_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merge_conflicts_other_lead_id'), ['other_lead_id'], unique=False)

    op.create_table('touchpoints',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('scene', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('source_code', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inbox.id'], name=op.f('fk_touchpoints_inbox_id_inbox')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_touchpoints_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touchpoints')),
    sa.UniqueConstraint('inbox_id', 'kind', name=op.f('uq_touchpoints_inbox_id_kind'))
    )
    with op.batch_alter_table('touchpoints', schema=None) as batch_op:
        batch_op.create_index('ix_touchpoints_lead_id_occurred_at', ['lead_id', 'occurred_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('touchpoints', schema=None) as batch_op:
        batch_op.drop_index('ix_touchpoints_lead_id_occurred_at')

    op.drop_table('touchpoints')
    with op.batch_alter_table('merge_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_conflicts_other_lead_id'))
        batch_op.drop_index(batch_op.f('ix_merge_conflicts_lead_id'))

    op.drop_table('merge_conflicts')
    op.drop_table('lead_tags')
    with op.batch_alter_table('lead_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_merges_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_lead_merges_merged_id'))

    op.drop_table('lead_merges')
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identities_lead_id'))

    op.drop_table('identities')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next_attempt_at')

    op.drop_table('outbox')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_last_activity_at'))

    op.drop_table('leads')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_status_id')

    op.drop_table('inbox')

