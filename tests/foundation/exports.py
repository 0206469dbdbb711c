"""A small, valid CSV export (two platforms' worth of records on one platform) that tests edit row by row."""
from __future__ import annotations

import csv
from pathlib import Path

CANVAS = "https://canvas.test/api/lti/courses/101"

HEADERS: dict[str, list[str]] = {
    "courses.csv": ["platform", "deployment_id", "context_id", "title", "lineitems_url", "memberships_url",
                    "starts_at", "ends_at"],
    "accounts.csv": ["account_id", "email", "name", "origin"],
    "identities.csv": ["account_id", "platform", "lms_user_id"],
    "links.csv": ["platform", "context_id", "resource_link_id", "activity_id", "title", "graded"],
    "completions.csv": ["account_id", "activity_id", "score_given", "score_maximum", "completed_at", "platform",
                        "context_id", "resource_link_id"],
    "passbacks.csv": ["account_id", "platform", "context_id", "resource_link_id", "line_item_id", "lms_user_id",
                      "score_given", "score_maximum", "timestamp", "status_code", "response"],
}


def valid_rows() -> dict[str, list[list[str]]]:
    """Row lists per file (header excluded): line N of a file is rows[N-2]."""
    return {
        "courses.csv": [
            ["canvas-test", "dep-1", "101", "Biology 101", f"{CANVAS}/line_items", f"{CANVAS}/names_and_roles",
             "2025-01-06T00:00:00Z", "2025-06-30T23:59:59+02:00"],
            ["canvas-test", "dep-1", "102", "Chemistry", "", "", "", ""],
        ],
        "accounts.csv": [
            ["acc-1", "ada@example.edu", "Ada", "lti"],
            ["acc-2", "Ada@Example.edu", "Ada (manual)", "manual"],
            ["acc-3", "", "", "LTI"],
        ],
        "identities.csv": [
            ["acc-1", "canvas-test", "sub-1"],
            ["acc-3", "canvas-test", "sub-3"],
        ],
        "links.csv": [
            ["canvas-test", "101", "rl-1", "act-1", "Quiz 1", "true"],
            ["canvas-test", "101", "rl-2", "act-2", "Reading", "FALSE"],
        ],
        "completions.csv": [
            ["acc-1", "act-1", "8", "10", "2025-03-01T10:00:00+01:00", "canvas-test", "101", "rl-1"],
            ["acc-2", "act-1", "9.5", "10", "2025-03-02T10:00:00Z", "", "", ""],
            ["acc-3", "act-2", "0", "1", "2025-03-03T10:00:00.123456-05:00", "canvas-test", "999", "rl-x"],
        ],
        "passbacks.csv": [
            ["acc-1", "canvas-test", "101", "rl-1", f"{CANVAS}/line_items/7", "sub-1", "8", "10",
             "2025-03-01T09:00:01Z", "200", "{}"],
            ["", "canvas-test", "101", "rl-1", "", "sub-3", "", "", "2025-03-01T09:00:02Z", "422",
             "assignment unpublished"],
        ],
    }


def write_export(folder: Path, rows: dict[str, list[list[str]]] | None = None,
                 headers: dict[str, list[str]] | None = None, skip: tuple[str, ...] = ()) -> Path:
    """Write the export to `folder` (created); returns it."""
    rows = valid_rows() if rows is None else rows
    headers = {**HEADERS, **(headers or {})}
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in rows.items():
        if name in skip:
            continue
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(headers[name])
            w.writerows(body)
    return folder
