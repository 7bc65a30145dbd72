"""console work: saved lead-list filters, hand-off claims and replies, the console author of an outbox row

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('saved_filters',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('user_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('query', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_saved_filters_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filters')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_saved_filters_user_id_name')),
    )
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_filters_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_user_id', _ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_author_user_id_users'), 'users', ['author_user_id'], ['id'])
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by_user_id', _ID, nullable=True))
        batch_op.add_column(sa.Column('claimed_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_by_user_id', _ID, nullable=True))
        batch_op.add_column(sa.Column('reply_outbox_id', _ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_handoffs_claimed_by_user_id_users'), 'users',
                                    ['claimed_by_user_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_handoffs_closed_by_user_id_users'), 'users',
                                    ['closed_by_user_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_handoffs_reply_outbox_id_outbox'), 'outbox',
                                    ['reply_outbox_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_handoffs_reply_outbox_id_outbox'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_handoffs_closed_by_user_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_handoffs_claimed_by_user_id_users'), type_='foreignkey')
        batch_op.drop_column('reply_outbox_id')
        batch_op.drop_column('closed_by_user_id')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by_user_id')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_author_user_id_users'), type_='foreignkey')
        batch_op.drop_column('author_user_id')
    op.drop_table('saved_filters')
