"""call records (one row per call, every timestamp the queue statistics need)

Revision ID: 0002_calls
Revises: 0001
Create Date: 2026-11-24 03:53:25.024344
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0002_calls'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('from_number', sa.String(length=32), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=40), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('member_uid', sa.String(length=32), nullable=True),
    sa.Column('agent_login', sa.String(length=64), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('offers', sa.Integer(), nullable=False),
    sa.Column('arrived', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verified_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('queued', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('offered', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('left_queue', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('waited_s', sa.Float(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('queue_result', sa.String(length=32), nullable=True),
    sa.Column('dial_status', sa.String(length=20), nullable=True),
    sa.Column('call_status', sa.String(length=20), nullable=True),
    sa.Column('disposition', sa.String(length=40), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_records')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_call_records_call_sid'))
    )
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_records_answered'), ['answered'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_left_queue'), ['left_queue'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_queued'), ['queued'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_queued'))
        batch_op.drop_index(batch_op.f('ix_call_records_outcome'))
        batch_op.drop_index(batch_op.f('ix_call_records_left_queue'))
        batch_op.drop_index(batch_op.f('ix_call_records_answered'))

    op.drop_table('call_records')
