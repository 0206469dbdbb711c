"""Keyed lookups for a batch of courses (issue 12 §3, §5): accounts by normalised email (as the diagnosis
compares them), completions by launch course, resync tasks by course.

Revision ID: 0005_keyed_lookups
Revises: 0004_night_at_scale
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0005_keyed_lookups'
down_revision: Union[str, None] = '0004_night_at_scale'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_account_email_norm', 'account', [sa.text('lower(trim(email))')])
    op.create_index('ix_completion_launch_course', 'completion', ['platform', 'context_id', 'activity_id'])
    op.create_index('ix_resync_task_course', 'resync_task', ['platform', 'context_id'])


def downgrade() -> None:
    op.drop_index('ix_resync_task_course', table_name='resync_task')
    op.drop_index('ix_completion_launch_course', table_name='completion')
    op.drop_index('ix_account_email_norm', table_name='account')
