"""Live voice: `broadcasts.live` (the stream is the control plane's own, ended by the
officer), `bulletins.aired_live` (its content is the session's record), and
`live_sessions`, how each session ended and why, and what was kept of it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.database import UTCDateTime

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a constant default on both backends: no table rebuild.
    op.add_column(
        'broadcasts',
        sa.Column('live', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        'bulletins',
        sa.Column('aired_live', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        'live_sessions',
        sa.Column('broadcast_id', sa.String(length=36), nullable=False),
        sa.Column('started_by', sa.String(length=100), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=300), nullable=True),
        sa.Column('spoken_ms', sa.Integer(), nullable=True),
        sa.Column('recorded_ms', sa.Integer(), nullable=True),
        sa.Column('gaps_ms', sa.Integer(), nullable=True),
        sa.Column('recording_sha256', sa.String(length=64), nullable=True),
        sa.Column('recording_problem', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ['broadcast_id'], ['broadcasts.id'],
            name=op.f('fk_live_sessions_broadcast_id_broadcasts'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['recording_sha256'], ['media_files.sha256'],
            name=op.f('fk_live_sessions_recording_sha256_media_files'),
        ),
        sa.PrimaryKeyConstraint('broadcast_id', name=op.f('pk_live_sessions')),
    )


def downgrade() -> None:
    op.drop_table('live_sessions')
    op.execute('ALTER TABLE bulletins DROP COLUMN aired_live')
    op.execute('ALTER TABLE broadcasts DROP COLUMN live')
