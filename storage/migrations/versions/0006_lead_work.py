"""lead work: notes and tasks on a lead (the 360)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('lead_notes',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('lead_id', _ID, nullable=False),
    sa.Column('author_user_id', _ID, nullable=True),
    sa.Column('author_label', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_lead_notes_author_user_id_users')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_notes_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_notes')),
    )
    with op.batch_alter_table('lead_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_notes_lead_id'), ['lead_id'], unique=False)
    op.create_table('lead_tasks',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('lead_id', _ID, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=True),
    sa.Column('assignee_user_id', _ID, nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_by_user_id', _ID, nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('done_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_user_id'], ['users.id'], name=op.f('fk_lead_tasks_assignee_user_id_users')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'],
                            name=op.f('fk_lead_tasks_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_tasks_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_tasks')),
    )
    with op.batch_alter_table('lead_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_tasks_assignee_user_id'), ['assignee_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_tasks_lead_id'), ['lead_id'], unique=False)


def downgrade() -> None:
    op.drop_table('lead_tasks')  # its indexes go with it
    op.drop_table('lead_notes')
