"""Resync task: last_outcome (what the last handling concluded) and item_blocked_at (the line item
refuses scores as inactive; its tasks wait for a per-run probe). Issue 10 §1, §3.

Revision ID: 0003_resync
Revises: 0002_tool_records_history
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0003_resync'
down_revision: Union[str, None] = '0002_tool_records_history'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('resync_task') as batch:
        batch.add_column(sa.Column('last_outcome', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('item_blocked_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('resync_task') as batch:
        batch.drop_column('item_blocked_at')
        batch.drop_column('last_outcome')
