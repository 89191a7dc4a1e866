"""console: wrap-up time on call records; indexes for agents' figures, callers' history, tickets and a day's export

Revision ID: 0004_console
Revises: 0003_callbacks
Create Date: 2026-11-24 06:10:00
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0004_console'
down_revision = '0003_callbacks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wrapped_up', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_call_records_from_number'), ['from_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_member_uid'), ['member_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_agent_login'), ['agent_login'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_arrived'), ['arrived'], unique=False)
    with op.batch_alter_table('callback_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_tickets_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tickets_member_uid'), ['member_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tickets_call_sid'), ['call_sid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('callback_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_tickets_call_sid'))
        batch_op.drop_index(batch_op.f('ix_callback_tickets_member_uid'))
        batch_op.drop_index(batch_op.f('ix_callback_tickets_phone'))
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_arrived'))
        batch_op.drop_index(batch_op.f('ix_call_records_agent_login'))
        batch_op.drop_index(batch_op.f('ix_call_records_member_uid'))
        batch_op.drop_index(batch_op.f('ix_call_records_from_number'))
        batch_op.drop_column('wrapped_up')
