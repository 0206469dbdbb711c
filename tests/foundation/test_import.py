"""`gradesync import DIR`: a valid export loads; every bad row is rejected with file, line and reason and
kept in import_rejection; re-import is idempotent; fatal problems exit 1 before writing anything."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app
from gradesync.importer import import_folder
from gradesync.settings import load_settings
from models import (
    Account, Completion, Course, Identity, ImportBatch, ImportRejection, Link, Passback, Platform, make_engine,
    session_scope,
)
from .exports import CANVAS, valid_rows, write_export

runner = CliRunner()


@pytest.fixture
def config(write_config, db_url):
    return write_config(db_url=db_url)


def cli_import(config, folder, *extra: str):
    return runner.invoke(app, ["--config", str(config), "import", str(folder), *extra])


def rows_of(url: str, model):
    with session_scope(make_engine(url)) as s:
        return list(s.exec(select(model)).scalars())


def test_valid_export_imports_every_file(config, db_url, tmp_path):
    result = cli_import(config, write_export(tmp_path / "export"))
    assert result.exit_code == 0, result.output
    assert "all rows imported" in result.output

    courses = {c.context_id: c for c in rows_of(db_url, Course)}
    assert courses["101"].starts_at == datetime(2025, 1, 6, tzinfo=timezone.utc)
    assert courses["101"].ends_at == datetime(2025, 6, 30, 21, 59, 59, tzinfo=timezone.utc)   # +02:00 → UTC
    assert courses["101"].lineitems_url == f"{CANVAS}/line_items"
    assert courses["102"].lineitems_url is None and courses["102"].starts_at is None
    accounts = {a.account_id: a for a in rows_of(db_url, Account)}
    assert accounts["acc-3"].origin == "lti" and accounts["acc-3"].email is None
    assert {(i.account_id, i.lms_user_id) for i in rows_of(db_url, Identity)} == {("acc-1", "sub-1"), ("acc-3", "sub-3")}
    assert {(l.resource_link_id, l.graded) for l in rows_of(db_url, Link)} == {("rl-1", True), ("rl-2", False)}
    comps = {c.account_id: c for c in rows_of(db_url, Completion)}
    assert comps["acc-1"].completed_at == datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
    assert comps["acc-2"].platform is None and comps["acc-2"].context_id is None      # manual login
    assert comps["acc-3"].context_id == "999"                                           # another course's launch
    assert comps["acc-3"].completed_at == datetime(2025, 3, 3, 15, 0, 0, 123456, tzinfo=timezone.utc)
    passbacks = sorted(rows_of(db_url, Passback), key=lambda p: p.timestamp)
    assert [p.status_code for p in passbacks] == [200, 422]
    assert passbacks[1].score_given is None and passbacks[1].account_id is None
    assert [p.name for p in rows_of(db_url, Platform)] == ["canvas-test"]


def test_reimport_is_idempotent_and_a_changed_row_updates(config, db_url, tmp_path):
    settings = load_settings(config)
    folder = write_export(tmp_path / "export")
    engine = make_engine(db_url)
    from models import upgrade_database
    upgrade_database(db_url)
    with session_scope(engine) as s:
        first = import_folder(s, folder, settings)
    assert {f.file: (f.inserted, f.updated, f.unchanged) for f in first.files}["completions.csv"] == (3, 0, 0)

    with session_scope(engine) as s:
        again = import_folder(s, folder, settings)
    assert again.exit_code == 0
    for f in again.files:
        assert (f.inserted, f.updated) == (0, 0), f
        assert f.unchanged == f.rows
    counts = {f.file: f.rows for f in again.files}
    assert counts == {"courses.csv": 2, "accounts.csv": 3, "identities.csv": 2, "links.csv": 2,
                      "completions.csv": 3, "passbacks.csv": 2}

    rows = valid_rows()
    rows["completions.csv"][0][2] = "10"                     # acc-1 act-1: 8 → 10
    rows["accounts.csv"].append(["acc-4", "new@example.edu", "New", "manual"])
    write_export(folder, rows)
    with session_scope(engine) as s:
        changed = import_folder(s, folder, settings)
    by_file = {f.file: (f.inserted, f.updated, f.unchanged) for f in changed.files}
    assert by_file["completions.csv"] == (0, 1, 2)
    assert by_file["accounts.csv"] == (1, 0, 3)
    assert {c.account_id: c.score_given for c in rows_of(db_url, Completion)}["acc-1"] == 10.0
    assert len(rows_of(db_url, Completion)) == 3
    assert [b.counts["completions.csv"]["updated"] for b in rows_of(db_url, ImportBatch)] == [0, 0, 1]


def bad_export() -> tuple[dict[str, list[list[str]]], set[tuple[str, int, str]]]:
    """The valid export plus bad rows; returns (rows, expected {(file, line, reason fragment)})."""
    rows = valid_rows()
    c, a, i, l, cp, pb = (rows[n] for n in ("courses.csv", "accounts.csv", "identities.csv", "links.csv",
                                            "completions.csv", "passbacks.csv"))
    c += [
        ["moodle-x", "d", "201", "t", "", "", "", ""],                                                   # 4
        ["canvas-test", "d", "202", "t", "https://evil.test/api/lti/courses/1/line_items", "", "", ""],   # 5
        ["canvas-test", "d", "203", "t", "", "http://canvas.test/api/lti/courses/203/names_and_roles", "", ""],  # 6
        ["canvas-test", "d", "101", "dup", "", "", "", ""],                                              # 7
        ["canvas-test", "d", "204", "t", "", "", "2025-06-01T00:00:00Z", "2025-01-01T00:00:00Z"],        # 8
    ]
    a += [
        ["acc-9", "x@example.edu", "X", "sso"],                                                          # 5
        ["", "y@example.edu", "Y", "lti"],                                                               # 6
    ]
    i += [["acc-404", "canvas-test", "sub-404"]]                                                         # 4
    l += [
        ["canvas-test", "101", "rl-3", "act-3", "Quiz 3", "yes"],                                        # 4
        ["canvas-test", "555", "rl-4", "act-4", "Quiz 4", "true"],                                       # 5
    ]
    cp += [
        ["acc-1", "act-2", "abc", "10", "2025-03-01T10:00:00Z", "", "", ""],                             # 5
        ["acc-1", "act-3", "-1", "10", "2025-03-01T10:00:00Z", "", "", ""],                              # 6
        ["acc-1", "act-4", "1", "0", "2025-03-01T10:00:00Z", "", "", ""],                                # 7
        ["acc-1", "act-5", "1", "-5", "2025-03-01T10:00:00Z", "", "", ""],                               # 8
        ["acc-1", "act-6", "1", "10", "2025-03-01 10:00:00", "", "", ""],                                # 9
        ["acc-1", "act-7", "1", "10", "last tuesday", "", "", ""],                                       # 10
        ["acc-1", "act-8", "1", "10", "2025-03-01T10:00:00Z", "canvas-test", "", ""],                    # 11
        ["acc-1", "act-1", "1", "10", "2025-03-01T10:00:00Z", "canvas-test", "101", "rl-1"],             # 12
        ["acc-1", "act-9", "1", "10"],                                                                   # 13
        ["acc-1", "act-10", "", "10", "2025-03-01T10:00:00Z", "", "", ""],                               # 14
        ["acc-1", "act-11", "1", "10", "2025-03-01T10:00:00Z", "blackboard-x", "c", "r"],                # 15
        ["acc-1", "act-12", "nan", "10", "2025-03-01T10:00:00Z", "", "", ""],                            # 16
        ["acc-1", "act-13", "1", "10", "9999-12-31T23:59:59-05:00", "", "", ""],                         # 17
    ]
    pb += [
        ["", "canvas-test", "101", "rl-1", "https://evil.test/line_items/1", "sub-1", "1", "10",
         "2025-03-01T09:00:03Z", "200", ""],                                                             # 4
        ["", "canvas-test", "101", "", "", "sub-1", "1", "10", "2025-03-01T10:00:01+01:00", "200", ""],  # 5
        ["", "canvas-test", "101", "rl-1", "", "sub-1", "1", "10", "2025-03-01T09:00:09Z", "OK", ""],    # 6
    ]
    expected = {
        ("courses.csv", 4, "platform: unknown platform 'moodle-x'"),
        ("courses.csv", 5, "lineitems_url: host 'evil.test' is not in allowed_hosts of platform 'canvas-test'"),
        ("courses.csv", 6, "memberships_url: must be https"),
        ("courses.csv", 7, "duplicate key (platform='canvas-test', context_id='101'); first on line 2"),
        ("courses.csv", 8, "ends_at: '2025-01-01T00:00:00Z' is before starts_at"),
        ("accounts.csv", 5, "origin: expected lti or manual, got 'sso'"),
        ("accounts.csv", 6, "account_id: required value is missing"),
        ("identities.csv", 4, "account_id: unknown account 'acc-404'"),
        ("links.csv", 4, "graded: expected true or false, got 'yes'"),
        ("links.csv", 5, "context_id: unknown course '555'"),
        ("completions.csv", 5, "score_given: not a number: 'abc'"),
        ("completions.csv", 6, "score_given: negative score '-1'"),
        ("completions.csv", 7, "score_maximum: must be greater than 0, got '0'"),
        ("completions.csv", 8, "score_maximum: must be greater than 0, got '-5'"),
        ("completions.csv", 9, "completed_at: timestamp without a time zone is ambiguous"),
        ("completions.csv", 10, "completed_at: not an ISO 8601 timestamp: 'last tuesday'"),
        ("completions.csv", 11, "give all three (an LTI launch) or leave all three empty"),
        ("completions.csv", 12, "duplicate key (account_id='acc-1', activity_id='act-1', platform='canvas-test', "
                                "context_id='101'); first on line 2"),
        ("completions.csv", 13, "row has 4 fields, header has 8"),
        ("completions.csv", 14, "score_given: required value is missing"),
        ("completions.csv", 15, "platform: unknown platform 'blackboard-x'"),
        ("completions.csv", 16, "score_given: not a finite number"),
        ("completions.csv", 17, "completed_at: timestamp out of range"),
        ("passbacks.csv", 4, "line_item_id: host 'evil.test' is not in allowed_hosts"),
        ("passbacks.csv", 5, "resource_link_id, line_item_id: both empty"),
        ("passbacks.csv", 6, "status_code: not an integer: 'OK'"),
    }
    return rows, expected


def matches(found: set[tuple[str, int, str]], expected: set[tuple[str, int, str]]) -> None:
    for file, line, fragment in expected:
        hits = [r for r in found if r[0] == file and r[1] == line]
        assert hits, f"no rejection at {file}:{line} (expected {fragment!r}); got {sorted(found)}"
        assert any(fragment in r[2] for r in hits), f"{file}:{line}: {hits} lacks {fragment!r}"
    assert {(f, l) for f, l, _ in found} == {(f, l) for f, l, _ in expected}


def test_every_bad_row_is_rejected_with_file_line_and_reason(config, db_url, tmp_path):
    rows, expected = bad_export()
    result = cli_import(config, write_export(tmp_path / "export", rows), "--show", "100")
    assert result.exit_code == 2, result.output
    assert f"{len(expected)} row(s) rejected" in result.output
    assert "completions.csv:9: completed_at: timestamp without a time zone is ambiguous" in result.output

    stored = rows_of(db_url, ImportRejection)
    matches({(r.file, r.line, r.reason) for r in stored}, expected)
    raw = {(r.file, r.line): r.raw_row for r in stored}
    assert raw[("completions.csv", 5)] == "acc-1,act-2,abc,10,2025-03-01T10:00:00Z,,,"

    # the good rows were imported, the bad ones were not
    assert {c.context_id for c in rows_of(db_url, Course)} == {"101", "102"}
    assert {c.account_id for c in rows_of(db_url, Account)} == {"acc-1", "acc-2", "acc-3"}
    assert len(rows_of(db_url, Completion)) == 3
    comps = {(c.account_id, c.activity_id): c.score_given for c in rows_of(db_url, Completion)}
    assert comps[("acc-1", "act-1")] == 8.0             # the duplicate on line 12 did not overwrite line 2
    assert len(rows_of(db_url, Passback)) == 2


def test_rejections_are_printed_up_to_the_show_limit(config, tmp_path):
    rows, expected = bad_export()
    result = cli_import(config, write_export(tmp_path / "export", rows), "--show", "3")
    assert result.exit_code == 2
    assert sum(line.startswith("rejected ") for line in result.output.splitlines()) == 3
    assert f"and {len(expected) - 3:,} more rejected row(s)" in result.output


def test_missing_required_header_column_is_fatal_with_one_message_and_writes_nothing(config, db_url, tmp_path):
    headers = {"completions.csv": ["account_id", "activity_id", "score_given", "score_maximum", "platform",
                                   "context_id", "resource_link_id"]}
    rows = valid_rows()
    rows["completions.csv"] = [r[:4] + r[5:] for r in rows["completions.csv"]]
    result = cli_import(config, write_export(tmp_path / "export", rows, headers=headers))
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "completions.csv:1: missing column 'completed_at'; header has: account_id" in result.stderr
    from models import upgrade_database
    upgrade_database(db_url)
    assert rows_of(db_url, ImportBatch) == [] and rows_of(db_url, Link) == []     # nothing imported


def test_line_numbers_are_physical_lines_across_quoted_newlines_and_blank_lines(config, db_url, tmp_path):
    folder = write_export(tmp_path / "export")
    with (folder / "links.csv").open("a", encoding="utf-8") as fh:
        fh.write('canvas-test,101,rl-5,act-5,"A title\nover two lines",true\n')   # lines 4-5
        fh.write("\n")                                                           # line 6, blank
        fh.write("canvas-test,101,rl-6,act-6,Quiz,maybe\n")                      # line 7
    result = cli_import(config, folder)
    assert result.exit_code == 2
    assert [(r.file, r.line) for r in rows_of(db_url, ImportRejection)] == [("links.csv", 7)]
    assert {l.title for l in rows_of(db_url, Link)} >= {"A title\nover two lines"}


def test_passbacks_file_is_optional(config, tmp_path):
    result = cli_import(config, write_export(tmp_path / "export", skip=("passbacks.csv",)))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("problem, message", [
    ("missing_file", "missing required file links.csv"),
    ("missing_folder", "not a folder"),
])
def test_fatal_problems_exit_1_and_write_nothing(config, db_url, tmp_path, problem, message):
    folder = tmp_path / "export"
    if problem == "missing_file":
        write_export(folder, skip=("links.csv",))
    result = cli_import(config, folder)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output
    from models import upgrade_database
    upgrade_database(db_url)
    with session_scope(make_engine(db_url)) as s:
        assert s.exec(select(func.count()).select_from(ImportBatch)).one()[0] == 0


def test_unreachable_database_exits_1(write_config, tmp_path):
    cfg = write_config(db_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
    result = cli_import(cfg, write_export(tmp_path / "export"))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: cannot use database postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    assert "Traceback" not in result.output


def test_bom_is_tolerated_and_invalid_utf8_is_a_rejection(config, db_url, tmp_path):
    folder = write_export(tmp_path / "export")
    accounts = folder / "accounts.csv"
    accounts.write_bytes(b"\xef\xbb\xbf" + accounts.read_bytes() + b"acc-7,bad\xff@example.edu,Bad,lti\n")
    result = cli_import(config, folder)
    assert result.exit_code == 2, result.output
    stored = rows_of(db_url, ImportRejection)
    assert [(r.file, r.line) for r in stored] == [("accounts.csv", 5)]
    assert "not valid UTF-8" in stored[0].reason
    assert {a.account_id for a in rows_of(db_url, Account)} == {"acc-1", "acc-2", "acc-3"}
