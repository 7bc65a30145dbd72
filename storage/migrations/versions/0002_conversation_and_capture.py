"""conversation and capture

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:15:28.289093
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('content_items',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('cover', sa.String(length=500), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('key', sa.Boolean(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_items'))
    )
    op.create_table('handoffs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['inbox_id'], ['inbox.id'], name=op.f('fk_handoffs_inbox_id_inbox')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_handoffs_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoffs')),
    sa.UniqueConstraint('inbox_id', name=op.f('uq_handoffs_inbox_id'))
    )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoffs_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handoffs_status'), ['status'], unique=False)

    op.create_table('mp_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('openid', sa.String(length=128), nullable=False),
    sa.Column('session_key', sa.String(length=200), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_mp_sessions_lead_id_leads')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_mp_sessions'))
    )
    with op.batch_alter_table('mp_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mp_sessions_lead_id'), ['lead_id'], unique=False)

    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_source_from_user_status', ['source', 'from_user', 'status'], unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oa_last_interaction_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('erased_at', UTCDateTime(), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_lead_id'), ['lead_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_lead_id_leads'), 'leads', ['lead_id'], ['id'])




def downgrade() -> None:

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_lead_id_leads'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_lead_id'))
        batch_op.drop_column('lead_id')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('oa_last_interaction_at')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_source_from_user_status')

    with op.batch_alter_table('mp_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mp_sessions_lead_id'))

    op.drop_table('mp_sessions')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoffs_status'))
        batch_op.drop_index(batch_op.f('ix_handoffs_lead_id'))

    op.drop_table('handoffs')
    op.drop_table('content_items')

