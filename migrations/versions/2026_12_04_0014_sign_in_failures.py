"""sign_in_failures: wrong passwords counted per (name, address), not per account

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.database

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sign_in_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('held_until', core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failures'))
    )
    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.create_index('uq_sign_in_failures_username_address', ['username', 'address'], unique=True)
    # The account-wide lock let anyone lock the duty officer out: gone. Plain ALTER TABLE
    # (SQLite 3.35+): a batch rebuild would drop `users` and, foreign keys on, cascade
    # into every session and API token.
    op.execute('ALTER TABLE users DROP COLUMN locked_until')
    op.execute('ALTER TABLE users DROP COLUMN failed_logins')


def downgrade() -> None:
    op.add_column('users', sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
    op.add_column('users', sa.Column('locked_until', core.database.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.drop_index('uq_sign_in_failures_username_address')
    op.drop_table('sign_in_failures')
