"""The tool's records as a real tool writes them (issue 10 §2) and import errors on PostgreSQL (issue 14),
through `gradesync import` in a subprocess, on SQLite and PostgreSQL: an append-only passback log,
completions per launch context, full vs delta exports, and rows a database cannot hold."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from gradesync.audit.records import load_tool_records, resolve_scope
from gradesync.settings import load_settings
from models import Completion, Course, Identity, ImportRejection, Link, Passback, make_engine, session_scope
from .exports import CANVAS, valid_rows, write_export

GRADESYNC = Path(sys.executable).parent / "gradesync"
LI = f"{CANVAS}/line_items"


def gradesync_import(config: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GRADESYNC), "--config", str(config), "import", str(folder), *extra],
                          capture_output=True, text=True, timeout=120)


def rows_of(url: str, model) -> list:
    with session_scope(make_engine(url)) as s:
        return list(s.exec(select(model).order_by(model.id)).scalars())


def counts(proc: subprocess.CompletedProcess, file: str) -> list[str]:
    """The numbers of `file`'s row in the printed table (rows, inserted, updated, unchanged, rejected…)."""
    line = next(line for line in proc.stdout.splitlines() if line.strip().strip("│ ").startswith(file))
    return [c.strip() for c in line.strip().strip("│").split("│")][1:]


@pytest.fixture
def config(write_config, db_url):
    return write_config(db_url=db_url)


def passback(rl: str, li: str, status: str, ts: str = "2025-03-01T09:00:01Z", score: str = "8",
             response: str = "") -> list[str]:
    return ["acc-1", "canvas-test", "101", rl, li, "sub-1", score, "10", ts, status, response]


def test_passback_log_is_append_only_and_reimport_changes_nothing(config, db_url, tmp_path):
    rows = valid_rows()
    rows["passbacks.csv"] = [
        passback("rl-1", f"{LI}/7", "503", response="Service Unavailable"),     # 2: the first try…
        passback("rl-1", f"{LI}/7", "409", response="stale timestamp"),         # 3: …and its retry, same ts
        passback("rl-1", f"{LI}/7", "", ts="2025-03-02T09:00:00Z"),             # 4: timed out, no answer
        passback("rl-1", f"{LI}/7", "", ts="2025-03-02T09:00:00Z"),             # 5: the same timeout again
        passback("", f"{LI}/99", "200", ts="2025-03-03T09:00:00Z"),             # 6: a tool-created line item
    ]
    folder = write_export(tmp_path / "export", rows)
    first = gradesync_import(config, folder)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = rows_of(db_url, Passback)
    assert [p.status_code for p in stored] == [503, 409, None, None, 200]
    assert [p.occurrence for p in stored] == [1, 1, 1, 2, 1]                 # identical rows 4 and 5: both kept
    assert stored[4].resource_link_id is None and stored[4].line_item_id == f"{LI}/99"

    again = gradesync_import(config, folder)
    assert again.returncode == 0 and counts(again, "passbacks.csv")[:4] == ["5", "0", "0", "5"]
    assert len(rows_of(db_url, Passback)) == 5

    # A delta export that repeats old rows adds only what is new: a third identical timeout is new.
    rows["passbacks.csv"] = rows["passbacks.csv"][2:] + [passback("rl-1", f"{LI}/7", "", ts="2025-03-02T09:00:00Z")]
    delta = gradesync_import(config, write_export(tmp_path / "delta", rows))
    assert delta.returncode == 0 and counts(delta, "passbacks.csv")[:4] == ["4", "1", "0", "3"]
    assert [p.occurrence for p in rows_of(db_url, Passback) if p.status_code is None] == [1, 2, 3]


def test_passbacks_reach_the_audit_unchanged(config, db_url, tmp_path):
    rows = valid_rows()
    rows["passbacks.csv"] = [passback("rl-1", f"{LI}/7", "503"), passback("rl-1", f"{LI}/7", "409"),
                             passback("", f"{LI}/99", "", ts="2025-03-03T09:00:00Z")]
    assert gradesync_import(config, write_export(tmp_path / "export", rows)).returncode == 0
    settings = load_settings(config)
    records = load_tool_records(db_url, resolve_scope(db_url, settings, None, None, None))
    sent = records.courses[("canvas-test", "101")].passbacks
    assert [(p.resource_link_id, p.status_code, p.line_item_id) for p in sent] == [
        ("rl-1", 503, f"{LI}/7"), ("rl-1", 409, f"{LI}/7"), (None, None, f"{LI}/99")]


def test_completions_in_two_contexts_are_both_kept(config, db_url, tmp_path):
    rows = valid_rows()
    rows["links.csv"].append(["canvas-test", "102", "rl-1b", "act-1", "Quiz 1 (retake term)", "true"])
    rows["completions.csv"] += [
        ["acc-1", "act-1", "10", "10", "2025-09-01T10:00:00Z", "canvas-test", "102", "rl-1b"],   # 5: retake
        ["acc-1", "act-1", "7", "10", "2025-03-05T10:00:00Z", "", "", ""],                        # 6: manual login
        ["acc-1", "act-1", "9", "10", "2025-09-02T10:00:00Z", "canvas-test", "102", "rl-1b"],    # 7: same context
    ]
    folder = write_export(tmp_path / "export", rows)
    first = gradesync_import(config, folder)
    assert first.returncode == 2
    assert "completions.csv:7: duplicate key (account_id='acc-1', activity_id='act-1', platform='canvas-test', " \
           "context_id='102'); first on line 5" in first.stdout
    mine = [(c.context_id, c.score_given) for c in rows_of(db_url, Completion) if c.account_id == "acc-1"]
    assert mine == [("101", 8.0), ("102", 10.0), (None, 7.0)]
    assert counts(gradesync_import(config, folder), "completions.csv")[:4] == ["6", "0", "0", "5"]

    settings = load_settings(config)
    records = load_tool_records(db_url, resolve_scope(db_url, settings, None, None, None))
    in_context = records.platforms["canvas-test"].completed_in_context
    assert "acc-1" in in_context[("101", "act-1")] and "acc-1" in in_context[("102", "act-1")]


def full_export_minus(tmp_path: Path, name: str) -> Path:
    """The valid export without course 102, link rl-2, identity sub-3 and acc-3's completion."""
    rows = valid_rows()
    rows["courses.csv"] = [r for r in rows["courses.csv"] if r[2] != "102"]
    rows["links.csv"] = [r for r in rows["links.csv"] if r[2] != "rl-2"]
    rows["identities.csv"] = [r for r in rows["identities.csv"] if r[2] != "sub-3"]
    rows["completions.csv"] = [r for r in rows["completions.csv"] if r[0] != "acc-3"]
    return write_export(tmp_path / name, rows)


def retired(url: str) -> dict[str, set]:
    return {"course": {c.context_id for c in rows_of(url, Course) if c.retired_at},
            "link": {l.resource_link_id for l in rows_of(url, Link) if l.retired_at},
            "identity": {i.lms_user_id for i in rows_of(url, Identity) if i.retired_at},
            "completion": {c.account_id for c in rows_of(url, Completion) if c.retired_at}}


def test_full_import_retires_what_the_export_no_longer_holds_and_unretires_what_returns(config, db_url, tmp_path):
    everything = write_export(tmp_path / "everything")
    assert gradesync_import(config, everything).returncode == 0
    smaller = full_export_minus(tmp_path, "smaller")

    delta = gradesync_import(config, smaller)                        # the default: additive
    assert delta.returncode == 0
    assert retired(db_url) == {"course": set(), "link": set(), "identity": set(), "completion": set()}

    full = gradesync_import(config, smaller, "--full")
    assert full.returncode == 0, full.stdout + full.stderr
    assert counts(full, "links.csv")[-1] == "1" and counts(full, "accounts.csv")[-1] == "-"
    assert retired(db_url) == {"course": {"102"}, "link": {"rl-2"}, "identity": {"sub-3"}, "completion": {"acc-3"}}
    assert len(rows_of(db_url, Link)) == 2 and len(rows_of(db_url, Completion)) == 3     # kept for history

    settings = load_settings(config)
    scope = resolve_scope(db_url, settings, None, None, None)
    assert [c.context_id for c in scope.courses] == ["101"]
    records = load_tool_records(db_url, scope)
    assert [link.resource_link_id for link in records.courses[("canvas-test", "101")].links] == ["rl-1"]
    platform = records.platforms["canvas-test"]
    assert "sub-3" not in platform.account_by_lms_user and "sub-1" in platform.account_by_lms_user
    assert "acc-3" not in platform.completions.get("act-2", {})
    assert resolve_scope(db_url, settings, None, None, ["act-2"]).courses == []       # its only link is retired

    back = gradesync_import(config, everything, "--full")
    assert back.returncode == 0
    assert counts(back, "completions.csv")[:3] == ["3", "0", "1"]          # acc-3's completion: un-retired
    assert retired(db_url) == {"course": set(), "link": set(), "identity": set(), "completion": set()}
    assert "acc-3" in load_tool_records(db_url, resolve_scope(db_url, settings, None, None, None)) \
        .platforms["canvas-test"].completions["act-2"]


def test_full_import_is_full_only_for_the_platforms_its_courses_name(write_config, db_url, tmp_path):
    config = write_config(db_url=db_url, platforms=[("canvas-test", "canvas", ["canvas.test"]),
                                                    ("moodle-test", "moodle", ["moodle.test"])])
    rows = valid_rows()
    rows["courses.csv"].append(["moodle-test", "dep-m", "m1", "Moodle course", "", "", "", ""])
    rows["identities.csv"].append(["acc-2", "moodle-test", "m-sub-2"])
    rows["links.csv"].append(["moodle-test", "m1", "m-rl", "act-1", "Quiz 1", "true"])
    assert gradesync_import(config, write_export(tmp_path / "both", rows)).returncode == 0

    canvas_only = valid_rows()
    canvas_only["completions.csv"] = [r for r in canvas_only["completions.csv"] if r[5]]    # no manual login
    result = gradesync_import(config, write_export(tmp_path / "canvas", canvas_only), "--full")
    assert result.returncode == 0, result.stdout + result.stderr
    # moodle-test's rows are outside the export; acc-2's manual-login completion belongs to no platform,
    # and this export is not full for every platform: all stay current.
    assert retired(db_url) == {"course": set(), "link": set(), "identity": set(), "completion": set()}


def test_full_import_retires_nothing_from_a_file_with_rejected_rows(config, db_url, tmp_path):
    rows = valid_rows()
    rows["links.csv"].append(["canvas-test", "102", "rl-c", "act-1", "Quiz 1", "true"])
    assert gradesync_import(config, write_export(tmp_path / "everything", rows)).returncode == 0
    rows["courses.csv"] = rows["courses.csv"][:1]                                       # course 102 gone
    rows["links.csv"] = [["canvas-test", "101", "rl-1", "act-1", "Quiz 1", "maybe"],    # 2: bad value
                         ["canvas-test", "102", "rl-c", "act-1", "Quiz 1", "true"]]     # 3: its course is gone
    result = gradesync_import(config, write_export(tmp_path / "bad", rows), "--full")
    assert result.returncode == 2
    assert "links.csv:3: context_id: course '102' on platform 'canvas-test' is retired" in result.stdout
    assert "links.csv: nothing retired: 2 row(s) rejected" in result.stdout
    assert retired(db_url)["course"] == {"102"} and retired(db_url)["link"] == set()     # rl-2 is not retired


def test_nul_byte_and_overlong_values_are_rejected_with_their_line(config, db_url, tmp_path):
    rows = valid_rows()
    rows["accounts.csv"] += [["acc-nul", "nul@example.edu", "Nul\x00Name", "manual"],          # 5
                             ["a" * 256, "long@example.edu", "Long id", "manual"]]                # 6
    rows["links.csv"].append(["canvas-test", "101", "rl-9", "act-9", "T" * 501, "true"])          # 4
    rows["passbacks.csv"].append(["acc-1", "canvas-test", "101", "rl-1", "", "sub-1", "1", "10",   # 4
                                  "2025-03-01T09:00:09Z", "200", "body with \x00 inside"])
    result = gradesync_import(config, write_export(tmp_path / "export", rows))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    stored = {(r.file, r.line): r for r in rows_of(db_url, ImportRejection)}
    assert set(stored) == {("accounts.csv", 5), ("accounts.csv", 6), ("links.csv", 4), ("passbacks.csv", 4)}
    assert stored[("accounts.csv", 5)].reason == "name: contains a NUL byte (\\x00), which a text column cannot hold"
    assert "Nul\\x00Name" in stored[("accounts.csv", 5)].raw_row
    assert stored[("accounts.csv", 6)].reason == "account_id: value is 256 characters, longer than the column's 255"
    assert stored[("links.csv", 4)].reason == "title: value is 501 characters, longer than the column's 500"
    assert stored[("passbacks.csv", 4)].reason.startswith("response: contains a NUL byte")
    assert len(rows_of(db_url, Link)) == 2 and len(rows_of(db_url, Passback)) == 2      # the good rows are in


def test_missing_header_column_exits_1_with_one_message(config, db_url, tmp_path):
    rows = valid_rows()
    rows["accounts.csv"] = [r[:1] + r[2:] for r in rows["accounts.csv"]] * 1000
    folder = write_export(tmp_path / "export", rows, headers={"accounts.csv": ["account_id", "name", "origin"]})
    result = gradesync_import(config, folder)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {folder}/accounts.csv:1: missing column 'email'; header has: account_id, name, origin"]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unbalanced_quote_is_reported_on_the_line_where_it_starts(config, db_url, tmp_path):
    folder = write_export(tmp_path / "export")
    with (folder / "links.csv").open("a", encoding="utf-8") as fh:
        fh.write('canvas-test,101,rl-5,act-5,"Quiz 5,true\n')                       # line 4: never closed
        fh.write("canvas-test,101,rl-6,act-6,Quiz 6,true\n")                        # line 5
        fh.write('canvas-test,101,rl-7,act-7,"Quiz ""seven""",true\n')              # line 6: well quoted
        fh.write('canvas-test,101,rl-8,act-8,Quiz 8,"true\n')                       # line 7: open to the end
    result = gradesync_import(config, folder)
    assert result.returncode == 2
    stored = [(r.file, r.line, r.reason) for r in rows_of(db_url, ImportRejection)]
    assert [(f, line) for f, line, _ in stored] == [("links.csv", 4), ("links.csv", 7)]
    assert stored[0][2].startswith("unbalanced quote: a quoted field opened on line 4 is never closed")
    assert "runs to the end of the file" in stored[1][2]
    titles = {l.resource_link_id: l.title for l in rows_of(db_url, Link)}
    assert titles["rl-6"] == "Quiz 6" and titles["rl-7"] == 'Quiz "seven"'      # the lines after it are read
    assert "rl-5" not in titles and "rl-8" not in titles
