"""`broadcasts.aired_sha256`: the rendition a play led with, which the clusters that heard
it hold (an emergency's compact speech rendition, issue 24), so a repeat and a re-send
name that one. Filled from `media_sha256` for the broadcasts before it, which led with it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 01:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no foreign key) on both backends: no table rebuild.
    op.add_column('broadcasts', sa.Column('aired_sha256', sa.String(length=64), nullable=True))
    op.execute('UPDATE broadcasts SET aired_sha256 = media_sha256')
    op.create_index('ix_broadcasts_aired_sha256', 'broadcasts', ['aired_sha256'])


def downgrade() -> None:
    op.drop_index('ix_broadcasts_aired_sha256', table_name='broadcasts')
    op.execute('ALTER TABLE broadcasts DROP COLUMN aired_sha256')
