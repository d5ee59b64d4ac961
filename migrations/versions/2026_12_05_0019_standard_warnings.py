"""Standard warnings (issue 24): the province's library of warnings every cluster holds
ahead of need (docs/protocol.md 11.1), each naming its clip in `media_files`.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.database import UTCDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'standard_warnings',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('media_sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ['media_sha256'], ['media_files.sha256'],
            name=op.f('fk_standard_warnings_media_sha256_media_files'), ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_warnings')),
    )


def downgrade() -> None:
    op.drop_table('standard_warnings')
