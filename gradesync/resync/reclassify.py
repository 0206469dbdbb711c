"""A refused resend changes what the finding is (docs/diagnosis-rules.md "Resync refusals").

The finding the task came from (in the audit run that last updated the task) is rewritten, so the
run's findings, `gradesync findings` and the digest read the new cause:
- learner-level causes (`not_learner`, `manual_grade_conflict`): the same row, new category/identity;
- `item_not_active` is item-level: one finding for the link replaces the learners' findings of it
  (an item-level finding suppresses the learner findings of its link).
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


def refuse_item(s: Session, task: m.ResyncTask, worker: str, evidence: dict[str, Any], response: str,
                status: int | None) -> list[int]:
    """The line item refuses grades (inactive): every open task of it that no other worker holds is
    `refused`, and the learners' findings give way to one `item_not_active` finding. Returns task ids."""
    siblings = s.exec(select(m.ResyncTask).where(
        m.ResyncTask.platform == task.platform, m.ResyncTask.line_item_id == task.line_item_id,
        m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).all()
    refused: list[int] = []
    now = m.utcnow()
    for t in siblings:
        if t.state is m.ResyncState.claimed and t.claimed_by != worker:
            continue                # another worker's; its own send will be refused the same way
        row = _source_finding(s, t)
        if row is not None:
            _item_finding(s, row.run_id, t, evidence)
            s.delete(row)
        t.state = m.ResyncState.refused
        t.last_status, t.last_response = status, response
        t.category = m.FindingCategory.item_not_active
        t.identity = identity_of("item_not_active", t.platform, t.context_id, t.resource_link_id)
        t.updated_at = now
        refused.append(t.id)
    return refused
