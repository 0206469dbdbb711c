"""The six CSV files of the tool's export (design.md "Inputs" 2): their columns, keys, target table and
how one row becomes one database row."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import SQLModel

from gradesync.importer import fields as f
from gradesync.importer.fields import RowError
from lti_client.registration import PlatformRegistration
from models import Account, Completion, Course, Identity, Link, Passback
from models.tool_records import launch_context_key


@dataclass
class ImportContext:
    """What a row is checked against: the configured platforms and what earlier files established."""

    platforms: dict[str, PlatformRegistration]
    account_ids: set[str] = field(default_factory=set)
    courses: set[tuple[str, str]] = field(default_factory=set)            # current (not retired) courses
    retired_courses: set[tuple[str, str]] = field(default_factory=set)


Converter = Callable[[dict[str, str], ImportContext], dict[str, Any]]


@dataclass(frozen=True)
class FileSpec:
    file: str
    model: type[SQLModel]
    columns: tuple[str, ...]          # all required in the header (extra columns are ignored)
    key: tuple[str, ...]              # unique within the file and in the table
    convert: Converter
    required_file: bool = True
    # Columns named when a row repeats the key (default: the key itself).
    shown_key: tuple[str, ...] | None = None
    # Rows a full export no longer holds get retired_at (and lose it when they come back). Only files
    # whose rows belong to one platform: accounts are shared by every platform.
    retirable: bool = True
    # An append-only log: no key in the data; each row is identified by its content's digest and its
    # occurrence number in the file (see models.tool_records.passback_digest). Never updated or retired.
    append_only: bool = False
    # Set to the import's time on insert and on a real change (never compared): the night plan's
    # "changed since the last clean audit" (gradesync/audit/night_plan.py).
    touch_column: str | None = None

    @property
    def update_columns(self) -> tuple[str, ...]:
        if self.append_only:
            return ()
        return tuple(c for c in self.columns if c not in self.key) + (("retired_at",) if self.retirable else ())


def _course(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    reg = f.platform_of("platform", f.required(row, "platform"), ctx.platforms)
    starts = f.timestamp("starts_at", row["starts_at"]) if row["starts_at"] else None
    ends = f.timestamp("ends_at", row["ends_at"]) if row["ends_at"] else None
    if starts and ends and ends < starts:
        raise RowError(f"ends_at: {row['ends_at']!r} is before starts_at {row['starts_at']!r}")
    li, mb = row["lineitems_url"], row["memberships_url"]
    return {
        "platform": reg.name, "context_id": f.required(row, "context_id"),
        "deployment_id": f.optional(row, "deployment_id"), "title": f.optional(row, "title"),
        "lineitems_url": f.service_url("lineitems_url", li, reg) if li else None,
        "memberships_url": f.service_url("memberships_url", mb, reg) if mb else None,
        "starts_at": starts, "ends_at": ends,
    }


def _account(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    return {
        "account_id": f.required(row, "account_id"), "email": f.optional(row, "email"),
        "name": f.optional(row, "name"), "origin": f.choice("origin", f.required(row, "origin"), ("lti", "manual")),
    }


def _known_account(ctx: ImportContext, account_id: str) -> str:
    if account_id not in ctx.account_ids:
        raise RowError(f"account_id: unknown account {account_id!r} (not in accounts.csv)")
    return account_id


def _identity(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    reg = f.platform_of("platform", f.required(row, "platform"), ctx.platforms)
    lms_user_id = f.required(row, "lms_user_id")
    return {"account_id": _known_account(ctx, f.required(row, "account_id")), "platform": reg.name,
            "lms_user_id": lms_user_id}


def _link(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    reg = f.platform_of("platform", f.required(row, "platform"), ctx.platforms)
    context_id = f.required(row, "context_id")
    rl, activity = f.required(row, "resource_link_id"), f.required(row, "activity_id")
    graded = f.boolean("graded", f.required(row, "graded"))
    if (reg.name, context_id) not in ctx.courses:
        if (reg.name, context_id) in ctx.retired_courses:
            raise RowError(f"context_id: course {context_id!r} on platform {reg.name!r} is retired (a full "
                           "import found it gone from courses.csv)")
        raise RowError(f"context_id: unknown course {context_id!r} on platform {reg.name!r} (not in courses.csv)")
    return {"platform": reg.name, "context_id": context_id, "resource_link_id": rl, "activity_id": activity,
            "title": f.optional(row, "title"), "graded": graded}


def _completion(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    account_id = _known_account(ctx, f.required(row, "account_id"))
    activity_id = f.required(row, "activity_id")
    given, maximum = f.score_pair(row)
    completed_at = f.timestamp("completed_at", f.required(row, "completed_at"))
    platform, context_id, rl = row["platform"], row["context_id"], row["resource_link_id"]
    if platform or context_id or rl:
        if not (platform and context_id and rl):
            raise RowError("platform, context_id, resource_link_id: give all three (an LTI launch) "
                           "or leave all three empty (a manual login)")
        # The context may be another course's (launched_outside_course), so only the platform is checked.
        platform = f.platform_of("platform", platform, ctx.platforms).name
    platform, context_id = platform or None, context_id or None
    return {"account_id": account_id, "activity_id": activity_id, "score_given": given,
            "score_maximum": maximum, "completed_at": completed_at, "platform": platform,
            "context_id": context_id, "resource_link_id": rl or None,
            "launch_context": launch_context_key(platform, context_id)}


def _passback(row: dict[str, str], ctx: ImportContext) -> dict[str, Any]:
    """A log line as the tool wrote it (design.md "Inputs" 2): status_code empty = no answer (timed out);
    resource_link_id empty = a POST to a line item the tool created itself, so line_item_id must say which."""
    reg = f.platform_of("platform", f.required(row, "platform"), ctx.platforms)
    given, maximum = f.score_pair(row, allow_empty=True)
    li, rl, status = row["line_item_id"], row["resource_link_id"], row["status_code"]
    if not rl and not li:
        raise RowError("resource_link_id, line_item_id: both empty: a passback names the line item it "
                       "targeted, or the resource link")
    return {
        "account_id": f.optional(row, "account_id"), "platform": reg.name,
        "context_id": f.required(row, "context_id"), "resource_link_id": rl or None,
        "line_item_id": f.service_url("line_item_id", li, reg) if li else None,
        "lms_user_id": f.required(row, "lms_user_id"), "score_given": given, "score_maximum": maximum,
        "timestamp": f.timestamp("timestamp", f.required(row, "timestamp")),
        "status_code": f.integer("status_code", status, 100, 599) if status else None,
        "response": f.optional(row, "response"),
    }


# Dependency order: a row may only reference rows of files above it.
SPECS: tuple[FileSpec, ...] = (
    FileSpec("courses.csv", Course,
             ("platform", "deployment_id", "context_id", "title", "lineitems_url", "memberships_url",
              "starts_at", "ends_at"), ("platform", "context_id"), _course),
    FileSpec("accounts.csv", Account, ("account_id", "email", "name", "origin"), ("account_id",), _account,
             retirable=False),
    FileSpec("identities.csv", Identity, ("account_id", "platform", "lms_user_id"),
             ("platform", "lms_user_id"), _identity),
    FileSpec("links.csv", Link, ("platform", "context_id", "resource_link_id", "activity_id", "title", "graded"),
             ("platform", "context_id", "resource_link_id"), _link),
    FileSpec("completions.csv", Completion,
             ("account_id", "activity_id", "score_given", "score_maximum", "completed_at", "platform",
              "context_id", "resource_link_id"), ("account_id", "activity_id", "launch_context"), _completion,
             shown_key=("account_id", "activity_id", "platform", "context_id"), touch_column="changed_at"),
    FileSpec("passbacks.csv", Passback,
             ("account_id", "platform", "context_id", "resource_link_id", "line_item_id", "lms_user_id",
              "score_given", "score_maximum", "timestamp", "status_code", "response"),
             ("row_digest", "occurrence"), _passback, required_file=False, retirable=False, append_only=True,
             touch_column="imported_at"),
)
