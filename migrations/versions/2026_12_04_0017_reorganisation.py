"""Areas carry their history through a reorganisation: `dissolved_on` and `successors` on
an area that ceased to exist (kept, never deleted, so every record still finds it),
`since` on one that took its present form in one (so applying it again changes nothing),
`moving_from` on a cluster until it confirms its new areas, and
`area_versions`, what an area that continues under its code was called, and where it
stood, before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.database import UTCDateTime

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (nullable, no foreign key: no table rebuild).
    op.add_column('areas', sa.Column('dissolved_on', sa.Date(), nullable=True))
    op.add_column('areas', sa.Column('successors', sa.JSON(), nullable=True))
    op.add_column('areas', sa.Column('since', sa.Date(), nullable=True))
    op.add_column('clusters', sa.Column('moving_from', sa.String(length=1000), nullable=True))
    op.create_index('ix_clusters_moving_from', 'clusters', ['moving_from'])
    op.create_table(
        'area_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('area_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('level', sa.String(length=32), nullable=False),
        sa.Column('path', sa.String(length=1000), nullable=False),
        sa.Column('until', sa.Date(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=False),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['area_id'], ['areas.id'], name=op.f('fk_area_versions_area_id_areas'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_area_versions')),
    )
    op.create_index('ix_area_versions_area_id', 'area_versions', ['area_id'])


def downgrade() -> None:
    op.drop_index('ix_area_versions_area_id', table_name='area_versions')
    op.drop_table('area_versions')
    op.drop_index('ix_clusters_moving_from', table_name='clusters')
    op.execute('ALTER TABLE clusters DROP COLUMN moving_from')
    op.execute('ALTER TABLE areas DROP COLUMN since')
    op.execute('ALTER TABLE areas DROP COLUMN successors')
    op.execute('ALTER TABLE areas DROP COLUMN dissolved_on')
