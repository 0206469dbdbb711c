"""Tool records as a real tool writes them (issue 10 §2): an append-only passback log, completions per
launch context, and `retired_at` for rows a full export no longer holds.

- passback: the unique key that rejected a retried POST is dropped; a row is identified by the digest of
  its whole content plus its occurrence number (the Nth identical row of an export); status_code and
  resource_link_id may be NULL (no answer; a tool-created line item); (platform, context_id) is indexed
  for the audit's lookup, which the dropped unique key used to serve.
- completion: unique per (account_id, activity_id, launch_context) instead of (account_id, activity_id).
- course, identity, link, completion: retired_at.

Existing rows are backfilled with the same digest and launch_context the importer computes, so
re-importing an export after the upgrade changes nothing. The two functions below are frozen copies of
models.tool_records.passback_digest / launch_context_key: a migration must not change when models/ does.

Revision ID: 0002_tool_records_history
Revises: 0001_initial
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002_tool_records_history"
down_revision: Union[str, None] = "0001_initial"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

RETIRABLE = ("course", "identity", "link", "completion")


def _launch_context(platform: str | None, context_id: str | None) -> str:
    if platform is None and context_id is None:
        return "none"
    return json.dumps([platform, context_id], ensure_ascii=False, separators=(",", ":"))


def _utc(value) -> datetime:
    if isinstance(value, str):                     # SQLite hands back its stored text for raw selects
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _passback_digest(r) -> str:
    content = [r.account_id, r.platform, r.context_id, r.resource_link_id, r.line_item_id, r.lms_user_id,
               None if r.score_given is None else float(r.score_given),
               None if r.score_maximum is None else float(r.score_maximum),
               _utc(r.timestamp).isoformat(timespec="microseconds"),
               None if r.status_code is None else int(r.status_code), r.response]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def upgrade() -> None:
    for table in RETIRABLE:
        op.add_column(table, sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()

    op.add_column("completion", sa.Column("launch_context", sa.Text(), nullable=True))
    completion = sa.table("completion", sa.column("id", sa.Integer()), sa.column("platform", sa.String()),
                          sa.column("context_id", sa.String()), sa.column("launch_context", sa.Text()))
    rows = [{"b_id": r.id, "b_key": _launch_context(r.platform, r.context_id)}
            for r in conn.execute(sa.select(completion.c.id, completion.c.platform, completion.c.context_id))]
    if rows:
        conn.execute(completion.update().where(completion.c.id == sa.bindparam("b_id"))
                     .values(launch_context=sa.bindparam("b_key")), rows)
    with op.batch_alter_table("completion") as batch:
        batch.alter_column("launch_context", existing_type=sa.Text(), nullable=False)
        batch.drop_constraint("uq_completion_account_activity", type_="unique")
        batch.create_unique_constraint("uq_completion_account_activity_context",
                                       ["account_id", "activity_id", "launch_context"])

    op.add_column("passback", sa.Column("row_digest", sa.String(length=64), nullable=True))
    op.add_column("passback", sa.Column("occurrence", sa.Integer(), nullable=True))
    cols = ("id", "account_id", "platform", "context_id", "resource_link_id", "line_item_id", "lms_user_id",
            "score_given", "score_maximum", "timestamp", "status_code", "response", "row_digest", "occurrence")
    passback = sa.table("passback", *[sa.column(c) for c in cols])
    # The old unique key made every stored row distinct, so each is the first occurrence of its content.
    rows = [{"b_id": r.id, "b_digest": _passback_digest(r), "b_occ": 1}
            for r in conn.execute(sa.select(*[passback.c[c] for c in cols[:12]]))]
    if rows:
        conn.execute(passback.update().where(passback.c.id == sa.bindparam("b_id"))
                     .values(row_digest=sa.bindparam("b_digest"), occurrence=sa.bindparam("b_occ")), rows)
    with op.batch_alter_table("passback") as batch:
        batch.alter_column("row_digest", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("occurrence", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("resource_link_id", existing_type=sa.String(length=255), nullable=True)
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint("uq_passback_platform_context_rl_user_ts", type_="unique")
        batch.create_unique_constraint("uq_passback_digest_occurrence", ["row_digest", "occurrence"])
    op.create_index("ix_passback_platform_context", "passback", ["platform", "context_id"], unique=False)


def downgrade() -> None:
    # Lossy by nature: retried passback rows and extra completion contexts cannot fit the old keys.
    op.drop_index("ix_passback_platform_context", table_name="passback")
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM passback WHERE occurrence > 1 OR status_code IS NULL "
                         "OR resource_link_id IS NULL"))
    conn.execute(sa.text("DELETE FROM passback WHERE id NOT IN (SELECT min(id) FROM passback GROUP BY "
                         "platform, context_id, resource_link_id, lms_user_id, timestamp)"))
    with op.batch_alter_table("passback") as batch:
        batch.drop_constraint("uq_passback_digest_occurrence", type_="unique")
        batch.create_unique_constraint("uq_passback_platform_context_rl_user_ts",
                                       ["platform", "context_id", "resource_link_id", "lms_user_id", "timestamp"])
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("resource_link_id", existing_type=sa.String(length=255), nullable=False)
        batch.drop_column("occurrence")
        batch.drop_column("row_digest")
    conn.execute(sa.text("DELETE FROM completion WHERE id NOT IN (SELECT max(id) FROM completion "
                         "GROUP BY account_id, activity_id)"))
    with op.batch_alter_table("completion") as batch:
        batch.drop_constraint("uq_completion_account_activity_context", type_="unique")
        batch.create_unique_constraint("uq_completion_account_activity", ["account_id", "activity_id"])
        batch.drop_column("launch_context")
    for table in RETIRABLE:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("retired_at")
