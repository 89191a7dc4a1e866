"""conferences: how connected calls were handled (holds, agents, transfers, wrap-ups that ran out) and agents'
state changes

Revision ID: 0005_conferences
Revises: 0004_console
Create Date: 2026-12-03 11:00:00
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0005_conferences'
down_revision = '0004_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('hold_s', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('agents', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('transfers', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('wrap_up_expired', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'call_transfers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_sid', sa.String(length=64), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('from_agent', sa.String(length=64), nullable=False),
        sa.Column('to_target', sa.String(length=64), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('started', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('result', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['call_sid'], ['call_records.call_sid'],
                                name=op.f('fk_call_transfers_call_sid_call_records')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_transfers')),
        sa.UniqueConstraint('call_sid', 'n', name=op.f('uq_call_transfers_call_sid')),
    )
    with op.batch_alter_table('call_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_transfers_call_sid'), ['call_sid'], unique=False)
    op.create_table(
        'presence_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('login', sa.String(length=64), nullable=False),
        sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('from_state', sa.String(length=16), nullable=False),
        sa.Column('to_state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_presence_events')),
    )
    with op.batch_alter_table('presence_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_presence_events_login'), ['login'], unique=False)
        batch_op.create_index(batch_op.f('ix_presence_events_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('presence_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_presence_events_at'))
        batch_op.drop_index(batch_op.f('ix_presence_events_login'))
    op.drop_table('presence_events')
    with op.batch_alter_table('call_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_transfers_call_sid'))
    op.drop_table('call_transfers')
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_column('wrap_up_expired')
        batch_op.drop_column('transfers')
        batch_op.drop_column('agents')
        batch_op.drop_column('hold_s')
        batch_op.drop_column('hold_count')
