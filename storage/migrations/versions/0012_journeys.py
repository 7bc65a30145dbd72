"""nurture journeys: enrolments and their step log; due-time reminders of lead tasks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:20:00

An enrolment is a lead's place in a journey; the executor (bot/journeys) claims due ones and records each step
once in journey_steps, whose (enrolment_id, seq) is unique.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.add_column('lead_tasks', sa.Column('reminded_at', UTCDateTime(), nullable=True))
    op.create_table(
        'journey_enrolments',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('journey_id', sa.String(length=64), nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('version', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=120), nullable=False),
        sa.Column('position', sa.String(length=200), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.Column('enrolled_at', UTCDateTime(), nullable=False),
        sa.Column('due_at', UTCDateTime(), nullable=True),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_journey_enrolments_lead_id_leads')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_enrolments')),
    )
    op.create_index('uq_journey_enrolments_active', 'journey_enrolments', ['journey_id', 'lead_id'], unique=True,
                    postgresql_where=_ACTIVE, sqlite_where=_ACTIVE)
    op.create_index('ix_journey_enrolments_due', 'journey_enrolments', ['due_at'],
                    postgresql_where=_ACTIVE, sqlite_where=_ACTIVE)
    op.create_index('ix_journey_enrolments_journey_id_status', 'journey_enrolments', ['journey_id', 'status'])
    op.create_index('ix_journey_enrolments_lead_id', 'journey_enrolments', ['lead_id'])
    op.create_table(
        'journey_steps',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('enrolment_id', BigId, nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('journey_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('position', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.Column('outbox_id', BigId, nullable=True),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['enrolment_id'], ['journey_enrolments.id'],
                                name=op.f('fk_journey_steps_enrolment_id_journey_enrolments')),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_journey_steps_lead_id_leads')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_steps')),
        sa.UniqueConstraint('enrolment_id', 'seq', name=op.f('uq_journey_steps_enrolment_id_seq')),
    )
    op.create_index('ix_journey_steps_lead_id_at', 'journey_steps', ['lead_id', 'at'])


def downgrade() -> None:
    op.drop_table('journey_steps')
    op.drop_table('journey_enrolments')
    op.drop_column('lead_tasks', 'reminded_at')
