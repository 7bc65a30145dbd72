"""the hand-off: assignments, routing counters on team members, the CRM webhook log, the SLA timer store

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 22:00:00

Assignments record every routing of an MQL (rule, outcome, SLA step); a partial unique index keeps one pending
assignment per lead whatever the number of processes. Team members get the counters the weighted round robin
needs. ``sla_timers`` is APScheduler's SQLAlchemy job store table, made here so the schema has one author.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no table rebuild of users / team_members on SQLite).
    op.add_column('users', sa.Column('card_style', sa.String(length=16), nullable=False,
                                     server_default='template_card'))
    op.add_column('team_members', sa.Column('monthly_cap', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('team_members', sa.Column('weight', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('team_members', sa.Column('credit', sa.Float(), nullable=False, server_default='0'))
    op.add_column('team_members', sa.Column('last_assigned_at', UTCDateTime(), nullable=True))
    op.create_table(
        'assignments',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('team_id', BigId, nullable=True),
        sa.Column('rule', sa.String(length=120), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('assigned_at', UTCDateTime(), nullable=False),
        sa.Column('assigned_by_user_id', BigId, nullable=True),
        sa.Column('previous_id', BigId, nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.Column('decided_by_user_id', BigId, nullable=True),
        sa.Column('return_reason', sa.String(length=40), nullable=True),
        sa.Column('return_text', sa.Text(), nullable=True),
        sa.Column('sla_step', sa.Integer(), nullable=False),
        sa.Column('card_code', sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_assignments_lead_id_leads')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_assignments_user_id_users')),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_assignments_team_id_teams')),
        sa.ForeignKeyConstraint(['assigned_by_user_id'], ['users.id'],
                                name=op.f('fk_assignments_assigned_by_user_id_users')),
        sa.ForeignKeyConstraint(['previous_id'], ['assignments.id'],
                                name=op.f('fk_assignments_previous_id_assignments')),
        sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'],
                                name=op.f('fk_assignments_decided_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments')),
    )
    op.create_index('uq_assignments_pending_lead', 'assignments', ['lead_id'], unique=True,
                    postgresql_where=_PENDING, sqlite_where=_PENDING)
    op.create_index('ix_assignments_user_status_assigned_at', 'assignments', ['user_id', 'status', 'assigned_at'])
    op.create_index('ix_assignments_lead_id_id', 'assignments', ['lead_id', 'id'])
    op.create_table(
        'assignment_events',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('assignment_id', BigId, nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('actor_user_id', BigId, nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                                name=op.f('fk_assignment_events_assignment_id_assignments')),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_assignment_events_lead_id_leads')),
        sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_assignment_events_actor_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_events')),
    )
    op.create_index('ix_assignment_events_lead_id_at', 'assignment_events', ['lead_id', 'at'])
    op.create_index(op.f('ix_assignment_events_assignment_id'), 'assignment_events', ['assignment_id'])
    op.create_table(
        'webhook_attempts',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('outbox_id', BigId, nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_webhook_attempts_outbox_id_outbox')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
    )
    op.create_index(op.f('ix_webhook_attempts_outbox_id'), 'webhook_attempts', ['outbox_id'])
    op.create_table(
        'sla_timers',
        sa.Column('id', sa.String(length=191), nullable=False),
        sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
        sa.Column('job_state', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_timers')),
    )
    op.create_index(op.f('ix_sla_timers_next_run_time'), 'sla_timers', ['next_run_time'])


def downgrade() -> None:
    op.drop_index(op.f('ix_sla_timers_next_run_time'), table_name='sla_timers')
    op.drop_table('sla_timers')
    op.drop_index(op.f('ix_webhook_attempts_outbox_id'), table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index(op.f('ix_assignment_events_assignment_id'), table_name='assignment_events')
    op.drop_index('ix_assignment_events_lead_id_at', table_name='assignment_events')
    op.drop_table('assignment_events')
    op.drop_index('ix_assignments_lead_id_id', table_name='assignments')
    op.drop_index('ix_assignments_user_status_assigned_at', table_name='assignments')
    op.drop_index('uq_assignments_pending_lead', table_name='assignments')
    op.drop_table('assignments')
    for name in ('last_assigned_at', 'credit', 'weight', 'monthly_cap'):
        op.drop_column('team_members', name)  # SQLite 3.35+: no table rebuild
    op.drop_column('users', 'card_style')
