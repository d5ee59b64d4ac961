"""firmware_images: a second person's approval before any rollout

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.database

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no table rebuild). Images released before this
    # stay unapproved: a second person looks at them before the next rollout.
    op.add_column('firmware_images', sa.Column('approved_by', sa.String(length=100), nullable=True))
    op.add_column('firmware_images', sa.Column('approved_at', core.database.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute('ALTER TABLE firmware_images DROP COLUMN approved_at')
    op.execute('ALTER TABLE firmware_images DROP COLUMN approved_by')
