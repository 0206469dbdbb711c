"""A refused resend changes what the finding is (docs/diagnosis-rules.md "Resync refusals").

The finding the task came from (in the audit run that last updated the task) is rewritten, so the
run's findings, `gradesync findings` and the digest read the new cause:
- learner-level causes (`not_learner`, `manual_grade_conflict`): the same row, new category/identity;
- `item_not_active` is item-level: one finding for the link replaces the learners' findings of it
  (an item-level finding suppresses the learner findings of its link); the tasks stay open and wait
  for the item (`block_item`), released when a probe lands (`release_item`).
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

import models as m
from gradesync.diagnosis.actions import ACTIONS
from gradesync.findings import identity_of, level_of


def _source_finding(s: Session, task: m.ResyncTask) -> m.Finding | None:
    run_id = task.updated_run_id or task.created_run_id
    if run_id is None:
        return None
    return s.exec(select(m.Finding).where(m.Finding.run_id == run_id, m.Finding.identity == task.identity)).first()


def reclassify_task(s: Session, task: m.ResyncTask, category: str, evidence: dict[str, Any]) -> None:
    """Give the task, and the finding it came from, the learner-level `category` (with `evidence`)."""
    new_identity = identity_of(category, task.platform, task.context_id, task.resource_link_id, task.lms_user_id)
    row = _source_finding(s, task)
    if row is not None and row.identity != new_identity:
        clash = s.exec(select(m.Finding).where(m.Finding.run_id == row.run_id,
                                               m.Finding.identity == new_identity)).first()
        if clash is not None:
            s.delete(row)           # the run already holds the new finding: keep one per scope
        else:
            row.category = m.FindingCategory(category)
            row.identity = new_identity
            row.level = level_of(category)
            row.action = ACTIONS[category]
            row.evidence = {**(row.evidence or {}), "resync": evidence}
    task.category = m.FindingCategory(category)
    task.identity = new_identity


def annotate_finding(s: Session, task: m.ResyncTask, evidence: dict[str, Any]) -> None:
    """Add what the resync found (`evidence["resync"]`) to the task's finding, keeping its category."""
    row = _source_finding(s, task)
    if row is not None:
        row.evidence = {**(row.evidence or {}), "resync": evidence}


def _item_finding(s: Session, run_id: int, task: m.ResyncTask, evidence: dict[str, Any]) -> m.Finding:
    identity = identity_of("item_not_active", task.platform, task.context_id, task.resource_link_id)
    row = s.exec(select(m.Finding).where(m.Finding.run_id == run_id, m.Finding.identity == identity)).first()
    if row is None:
        row = m.Finding(run_id=run_id, identity=identity, category=m.FindingCategory.item_not_active, level="item",
                        platform=task.platform, context_id=task.context_id, resource_link_id=task.resource_link_id,
                        activity_id=task.activity_id, line_item_id=task.line_item_id,
                        evidence={"resync": evidence}, action=ACTIONS["item_not_active"])
        s.add(row)
    return row


def block_item(s: Session, task: m.ResyncTask, worker: str, evidence: dict[str, Any]) -> list[int]:
    """The line item refuses grades as inactive: every open task of it waits (`item_blocked_at`) — none
    is closed, and none is POSTed while the item refuses; the resync sends one of them per run as a
    probe (claims.claim_probes). The learners' findings give way to one `item_not_active` finding.
    The caller has set `task`'s own state. Returns the ids of the tasks now waiting."""
    siblings = s.exec(select(m.ResyncTask).where(
        m.ResyncTask.platform == task.platform, m.ResyncTask.line_item_id == task.line_item_id,
        m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).all()
    waiting: list[int] = []
    now = m.utcnow()
    for t in siblings:
        if t.state is m.ResyncState.claimed and t.claimed_by != worker:
            continue                # another worker's; its own send will be refused the same way
        row = _source_finding(s, t)
        if row is not None and row.level == "learner":
            _item_finding(s, row.run_id, t, evidence)
            s.delete(row)
        if t.item_blocked_at is None:
            t.item_blocked_at = now
            t.updated_at = now
        waiting.append(t.id)
    return waiting


def release_item(s: Session, task: m.ResyncTask) -> list[int]:
    """The item's probe landed: its waiting tasks are due now (sent later in the same run). Returns
    the ids of the tasks released, the probe first."""
    released = [task.id]
    task.item_blocked_at = None
    siblings = s.exec(select(m.ResyncTask).where(
        m.ResyncTask.platform == task.platform, m.ResyncTask.line_item_id == task.line_item_id,
        m.ResyncTask.item_blocked_at.is_not(None), m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).all()
    now = m.utcnow()
    for t in siblings:
        if t.id == task.id:
            continue
        t.item_blocked_at = None
        t.next_attempt_at = None
        t.updated_at = now
        released.append(t.id)
    return released
