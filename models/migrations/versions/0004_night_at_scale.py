"""The night in batches (issue 12): audit_batch; per-course expected/present counts and batch on
course_audit; change marks on completions and passbacks (the rolling cadence); indexes for the per-run
and per-course queries.

Revision ID: 0004_night_at_scale
Revises: 0003_resync
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = '0004_night_at_scale'
down_revision: Union[str, None] = '0003_resync'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        'audit_batch',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('run_id', sa.Integer(), sa.ForeignKey('audit_run.id', ondelete='CASCADE'), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=100), nullable=False),
        sa.Column('course_count', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('flow_run_id', sa.String(length=64), nullable=True),
        sa.Column('worker', sa.String(length=255), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('request_stats', json, nullable=False),
        sa.Column('counts', json, nullable=False),
        sa.Column('validation', json, nullable=False),
        sa.Column('warnings', json, nullable=False),
        sa.Column('peak_rss_mb', sa.Float(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.UniqueConstraint('run_id', 'seq', name='uq_audit_batch_run_seq'),
    )
    with op.batch_alter_table('course_audit') as batch:
        batch.add_column(sa.Column('expected_count', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('present_count', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('completion') as batch:
        batch.add_column(sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('passback') as batch:
        batch.add_column(sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True))
    # Rows imported before this migration: changed "now", so the first nights read every course.
    op.execute(sa.text("UPDATE completion SET changed_at = CURRENT_TIMESTAMP"))
    op.execute(sa.text("UPDATE passback SET imported_at = CURRENT_TIMESTAMP"))
    op.create_index('ix_course_audit_course_run', 'course_audit', ['platform', 'context_id', 'run_id'])
    op.create_index('ix_finding_run_course', 'finding', ['run_id', 'platform', 'context_id'])


def downgrade() -> None:
    op.drop_index('ix_finding_run_course', table_name='finding')
    op.drop_index('ix_course_audit_course_run', table_name='course_audit')
    with op.batch_alter_table('passback') as batch:
        batch.drop_column('imported_at')
    with op.batch_alter_table('completion') as batch:
        batch.drop_column('changed_at')
    with op.batch_alter_table('course_audit') as batch:
        batch.drop_column('batch_id')
        batch.drop_column('present_count')
        batch.drop_column('expected_count')
    op.drop_table('audit_batch')
