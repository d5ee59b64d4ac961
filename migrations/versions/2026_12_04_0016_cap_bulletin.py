"""cap_messages.bulletin_id: the bulletin an alert became, so a Cancel or an Update can
withdraw what still waits in the communes' inboxes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no table rebuild); no foreign key, so SQLite
    # needs no copy of the table. Messages before this have none: a Cancel for them
    # withdraws nothing from the inboxes (it still stops what aired).
    op.add_column('cap_messages', sa.Column('bulletin_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    op.execute('ALTER TABLE cap_messages DROP COLUMN bulletin_id')
