"""callback tickets and attempts

Revision ID: 0003_callbacks
Revises: 0002_calls
Create Date: 2026-11-24 05:10:55.616342
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0003_callbacks'
down_revision = '0002_calls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callback_tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('member_uid', sa.String(length=32), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('source_call_sid', sa.String(length=64), nullable=True),
    sa.Column('created', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=True),
    sa.Column('dialing_since', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_tickets')),
    sa.UniqueConstraint('number', name=op.f('uq_callback_tickets_number')),
    sa.UniqueConstraint('source_call_sid', name=op.f('uq_callback_tickets_source_call_sid'))
    )
    with op.batch_alter_table('callback_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_tickets_closed'), ['closed'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tickets_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tickets_status'), ['status'], unique=False)
        batch_op.create_index('ix_callback_tickets_status_score', ['status', 'score'], unique=False)
        batch_op.create_index(
            "uq_callback_tickets_open_phone",
            ["phone"],
            unique=True,
            sqlite_where=sa.text("status IN ('scheduled', 'dialing', 'connected')"),
            postgresql_where=sa.text("status IN ('scheduled', 'dialing', 'connected')"),
        )

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("started", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["callback_tickets.id"],
            name=op.f("fk_callback_attempts_ticket_id_callback_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.UniqueConstraint("ticket_id", "n", name=op.f("uq_callback_attempts_ticket_id")),
    )
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_attempts_ticket_id'), ['ticket_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_attempts_ticket_id'))

    op.drop_table('callback_attempts')
    with op.batch_alter_table('callback_tickets', schema=None) as batch_op:
        batch_op.drop_index(
            "uq_callback_tickets_open_phone",
            sqlite_where=sa.text("status IN ('scheduled', 'dialing', 'connected')"),
            postgresql_where=sa.text("status IN ('scheduled', 'dialing', 'connected')"),
        )
        batch_op.drop_index('ix_callback_tickets_status_score')
        batch_op.drop_index(batch_op.f('ix_callback_tickets_status'))
        batch_op.drop_index(batch_op.f('ix_callback_tickets_due'))
        batch_op.drop_index(batch_op.f('ix_callback_tickets_closed'))

    op.drop_table('callback_tickets')
