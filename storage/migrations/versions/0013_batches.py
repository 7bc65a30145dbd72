"""batch messages to segments: segments, batches, their WeCom tasks and recipients

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:00:00

A segment is a saved lead-list query; a batch sends one message to it (bot/batches): one WeCom task per member
and ≤ 10,000 customers (batch_tasks), one row per lead with its channel, exclusion reason and outcome
(batch_recipients, written set-based with INSERT ... SELECT).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import IDENTITY_VALUE_LEN, BigId, UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'segments',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('query', sa.JSON(), nullable=False),
        sa.Column('created_by_user_id', BigId, nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'],
                                name=op.f('fk_segments_created_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
        sa.UniqueConstraint('name', name=op.f('uq_segments_name')),
    )
    op.create_table(
        'batches',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('segment_id', BigId, nullable=False),
        sa.Column('created_by_user_id', BigId, nullable=True),
        sa.Column('message', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('sandbox', sa.Boolean(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_batches_segment_id_segments')),
        sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'],
                                name=op.f('fk_batches_created_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batches')),
    )
    op.create_index('ix_batches_segment_id', 'batches', ['segment_id'])
    op.create_table(
        'batch_tasks',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('batch_id', BigId, nullable=False),
        sa.Column('member_userid', sa.String(length=64), nullable=False),
        sa.Column('chunk', sa.Integer(), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('outbox_id', BigId, nullable=True),
        sa.Column('msgid', sa.String(length=128), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('errcode', sa.Integer(), nullable=True),
        sa.Column('reminders', sa.JSON(), nullable=False),
        sa.Column('next_check_at', UTCDateTime(), nullable=True),
        sa.Column('confirmed_at', UTCDateTime(), nullable=True),
        sa.Column('sdr_task_id', BigId, nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_batch_tasks_batch_id_batches')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batch_tasks')),
    )
    op.create_index('ix_batch_tasks_batch_id', 'batch_tasks', ['batch_id'])
    op.create_index('ix_batch_tasks_status_next_check_at', 'batch_tasks', ['status', 'next_check_at'])
    op.create_table(
        'batch_recipients',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('batch_id', BigId, nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('member_userid', sa.String(length=64), nullable=True),
        sa.Column('external_userid', sa.String(length=IDENTITY_VALUE_LEN), nullable=True),
        sa.Column('openid', sa.String(length=IDENTITY_VALUE_LEN), nullable=True),
        sa.Column('task_id', BigId, nullable=True),
        sa.Column('outbox_id', BigId, nullable=True),
        sa.Column('errcode', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_batch_recipients_batch_id_batches')),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_batch_recipients_lead_id_leads')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batch_recipients')),
    )
    op.create_index('ix_batch_recipients_batch_id_id', 'batch_recipients', ['batch_id', 'id'])
    op.create_index('ix_batch_recipients_lead_id_created_at', 'batch_recipients', ['lead_id', 'created_at'])
    op.create_index('ix_batch_recipients_task_id_external_userid', 'batch_recipients',
                    ['task_id', 'external_userid'])
    op.create_index('ix_batch_recipients_batch_id_status', 'batch_recipients', ['batch_id', 'status'])


def downgrade() -> None:
    op.drop_table('batch_recipients')
    op.drop_table('batch_tasks')
    op.drop_table('batches')
    op.drop_table('segments')
