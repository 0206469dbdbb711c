"""Instructor and operator actions on a running sandbox, as Python methods (the admin routes call these).

Instructor actions change the LMS the way a person in the LMS would (a manual grade moves the
platform's stored time to now); operator actions change faults, the clock and counters.
"""
from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

from sandbox_lms import gradebook
from sandbox_lms.runtime import Runtime
from sandbox_lms.state import SCOPE_SCORE, CourseRecord, FaultConfig, LineItemRecord, LmsState, Registration, ResultRecord

_FAULT_FIELDS = {f.name for f in fields(FaultConfig)}


class SandboxError(LookupError):
    """An action named a registration, course, line item or member the sandbox does not have."""


class SandboxControl:
    """Actions bound to one sandbox's state and runtime."""

    def __init__(self, state: LmsState, runtime: Runtime) -> None:
        self.state = state
        self.runtime = runtime

    # ---- lookups ----
    def registration(self, name: str) -> Registration:
        """The registration called `name`."""
        reg = self.state.registrations.get(name)
        if reg is None:
            raise SandboxError(f"no registration {name!r}")
        return reg

    def course(self, reg: str, context_id: str) -> CourseRecord:
        """A course of a registration."""
        course = self.registration(reg).courses.get(context_id)
        if course is None:
            raise SandboxError(f"no course {context_id!r} in {reg!r}")
        return course

    def line_item(self, reg: str, context_id: str, item_id: int) -> LineItemRecord:
        """A (non-deleted) line item of a course."""
        li = self.course(reg, context_id).line_item(int(item_id))
        if li is None:
            raise SandboxError(f"no line item {item_id} in {reg}/{context_id}")
        return li

    # ---- instructor actions ----
    def set_manual_grade(self, reg: str, context_id: str, item_id: int, user_id: str, score: float | None,
                         *, scorer: str | None = "instructor", comment: str | None = None) -> ResultRecord:
        """An instructor grades a cell by hand (score on the item's scale): stored time → now,
        scoring_user_id = scorer, by_tool = False; the result shows it."""
        li = self.line_item(reg, context_id, item_id)
        return gradebook.manual_grade(li, user_id, score, now=self.runtime.now(), scorer=scorer, comment=comment)

    def plant_hidden_teacher_grade(self, reg: str, context_id: str, item_id: int, user_id: str, score: float,
                                   *, scorer: str | None = "instructor") -> ResultRecord:
        """Canvas: a teacher grades a learner the tool never scored (score on the item's scale). AGS results
        do not show it (no Lti::Result row, §3.2); a score POST with `prioritize_non_tool_grade` keeps it."""
        li = self.line_item(reg, context_id, item_id)
        return gradebook.hidden_teacher_grade(li, user_id, float(score), now=self.runtime.now(), scorer=scorer)

    def set_published(self, reg: str, context_id: str, item_id: int, published: bool) -> None:
        """Publish or unpublish a line item's assignment (Canvas published / Blackboard Available)."""
        self.line_item(reg, context_id, item_id).active = published

    def delete_line_item(self, reg: str, context_id: str, item_id: int) -> None:
        """Delete a line item's assignment (Canvas: 404 with an empty body afterwards)."""
        self.line_item(reg, context_id, item_id).deleted = True

    def set_member(self, reg: str, context_id: str, user_id: str, *, roles: list[str] | None = None,
                   status: str | None = None) -> None:
        """Change a member's roles and/or status (Active | Inactive | Deleted)."""
        member = self.course(reg, context_id).member(user_id)
        if member is None:
            raise SandboxError(f"no member {user_id!r} in {reg}/{context_id}")
        if roles is not None:
            member.roles = list(roles)
        if status is not None:
            if status not in ("Active", "Inactive", "Deleted"):
                raise ValueError(f"bad status {status!r}")
            member.status = status

    def conclude_course(self, reg: str, context_id: str, concluded: bool = True) -> None:
        """Conclude (or reopen) a course: every AGS/NRPS call on it is refused."""
        self.course(reg, context_id).concluded = concluded

    def set_tool_removed(self, reg: str, context_id: str, removed: bool = True) -> None:
        """Remove the tool from a course (or restore it): service calls answer 401."""
        self.course(reg, context_id).tool_removed = removed

    def set_score_scope(self, reg: str, granted: bool) -> None:
        """Revoke or restore the tool's AGS score scope (effective for new and existing tokens)."""
        scopes = self.registration(reg).granted_scopes
        if granted:
            scopes.add(SCOPE_SCORE)
        else:
            scopes.discard(SCOPE_SCORE)

    # ---- operator actions ----
    def set_faults(self, reg: str, config: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Replace the registration's faults (`config`) and/or change single fields; re-seeds the dice."""
        unknown = set(changes) - _FAULT_FIELDS
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        registration = self.registration(reg)
        registration.faults = replace(config or registration.faults, **changes)
        self.runtime.reseed(registration)
        return registration.faults

    def advance_clock(self, seconds: float) -> None:
        """Move the platform clock forward (token expiry, iat windows, manual-grade times)."""
        self.runtime.clock_offset += timedelta(seconds=seconds)

    def expire_tokens(self, reg: str | None = None) -> int:
        """Expire every issued token (of one registration); returns how many."""
        now = self.runtime.now()
        hit = [k for k, t in self.runtime.tokens.items() if reg in (None, t.registration)]
        for key in hit:
            self.runtime.tokens[key] = replace(self.runtime.tokens[key], expires_at=now)
        return len(hit)

    def counters(self) -> dict:
        """A JSON-able snapshot of the request counters."""
        return self.runtime.counters.snapshot()

    def reset_counters(self) -> None:
        """Zero the counters and clear the score log."""
        self.runtime.counters.reset()
        self.runtime.score_log.clear()
        self.runtime.score_bodies.clear()
