"""A batch's tool records read by its keys (load_tool_records with snapshots) give exactly the findings
of the whole-table read, on sandbox worlds with every planted category; and a batch reads only the
accounts, identities and completions its own learners need."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy.orm
from sqlalchemy.sql import Select

import models as m
from gradesync.audit.extract import extract_course, failed_snapshot
from gradesync.audit.records import AuditScope, CourseRef, load_course_records, load_tool_records, resolve_scope
from gradesync.diagnosis.course import diagnose_course
from tests.suite_gaps import suite_gaps
from gradesync.diagnosis.inputs import CourseSnapshot, ScoreGrant
from gradesync.settings import load_settings
from lti_client import LtiClient, LtiError
from lti_client.types import SCOPE_SCORE, LineItem, Member, Result
from pipeline.pipeline_helpers import serve_world
from sandbox_lms.worlds import CATEGORIES

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


async def _extract(settings, scope: AuditScope) -> tuple[dict, dict]:
    """(snapshots, grants) of every course in scope, read from the sandbox as the audit reads them."""
    snapshots: dict[tuple[str, str], CourseSnapshot] = {}
    grants: dict[str, ScoreGrant] = {}
    for name in scope.platforms:
        async with LtiClient(settings.platform(name)) as client:
            try:
                grants[name] = ScoreGrant.from_token_grant(await client.score_grant(), SCOPE_SCORE)
            except LtiError as e:
                grants[name] = ScoreGrant.from_error(e.info)
            for ctx, li_url, m_url in scope.courses_of(name):
                try:
                    snapshots[(name, ctx)] = await extract_course(client, li_url, m_url)
                except LtiError as e:
                    snapshots[(name, ctx)] = failed_snapshot(e)
    return snapshots, grants


def _findings(tool, snapshots, grants) -> list[tuple]:
    out = []
    for key, course in tool.courses.items():
        rec = tool.platforms[key[0]]
        d = diagnose_course(rec, course, snapshots[key], grants[key[0]], suite_gaps(rec, course, snapshots[key]))
        out += [(f.identity, f.account_id, f.tool_score, f.lms_score, repr(sorted(f.evidence.items())))
                for f in d.findings]
        out += [("expected", key, g.lms_user_id, g.account_id, g.completion) for g in d.expected]
    return sorted(out, key=repr)


def _batches(scope: AuditScope, size: int) -> list[AuditScope]:
    out = []
    for name in scope.platforms:
        refs = [c for c in scope.courses if c.platform == name]
        out += [AuditScope([name], refs[i:i + size], scope.activities, {name: scope.vendors[name]})
                for i in range(0, len(refs), size)]
    return out


@pytest.mark.parametrize("seed,size", [(3, "demo"), (11, "tiny")])
def test_keyed_records_give_the_findings_of_whole_table_records(tmp_path, db_url, seed, size):
    with serve_world(tmp_path, seed, size, db_url) as served:
        settings = load_settings(served.config)
        scope = resolve_scope(db_url, settings, None, None, None)
        snapshots, grants = asyncio.run(_extract(settings, scope))
    whole = _findings(load_tool_records(db_url, scope), snapshots, grants)
    keyed = []
    for batch in _batches(scope, 2):
        courses = load_course_records(db_url, batch)
        mine = {k: snapshots[k] for k in courses}
        keyed += _findings(load_tool_records(db_url, batch, mine, courses=courses), snapshots, grants)
    assert sorted(keyed, key=repr) == whole
    categories = {row[0].split("|")[0] for row in whole if row[0] != "expected"}
    assert categories == set(CATEGORIES)          # every planted category took part


# ---- rows read ----------------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
N_COURSES, N_LEARNERS, BATCH = 50, 8, 5


def _institution(s) -> None:
    """50 courses of 8 learners on one platform, each course with its own graded activity; in each course
    learner 0 did the work in a manual account of the same email (other case), learner 1 never launched
    the tool (no identity; found by roster email, non-ASCII in other case), learner 7 has no completion."""
    s.add(m.Platform(name="canvas-x", vendor="canvas", issuer="https://x", client_id="c"))
    s.flush()
    for c in range(N_COURSES):
        ctx = f"C{c:02}"
        s.add(m.Course(platform="canvas-x", context_id=ctx, title=ctx, starts_at=T0 - timedelta(days=30),
                       ends_at=T0 + timedelta(days=30)))
        s.flush()
        s.add(m.Link(platform="canvas-x", context_id=ctx, resource_link_id=f"RL{c}", activity_id=f"A{c}", graded=True))
        for i in range(N_LEARNERS):
            acc, email = f"acc-{c}-{i}", f"l{c}.{i}@example.edu" if i != 1 else f"JÖRG.{c}@EXAMPLE.EDU"
            s.add(m.Account(account_id=acc, email=email, origin="lti"))
            if i != 1:
                s.add(m.Identity(account_id=acc, platform="canvas-x", lms_user_id=f"u{c}-{i}"))
            if i == 0:
                s.add(m.Account(account_id=f"manual-{c}", email=email.upper(), origin="manual"))
            s.flush()
            if i != 7:
                done = f"manual-{c}" if i == 0 else acc
                s.add(m.Completion(account_id=done, activity_id=f"A{c}", score_given=7.0, score_maximum=10.0,
                                   completed_at=T0, platform="canvas-x" if i > 1 else None,
                                   context_id=ctx if i > 1 else None, resource_link_id=f"RL{c}" if i > 1 else None))


def _snapshot(c: int) -> CourseSnapshot:
    item = LineItem(id=f"li-{c}", label="Quiz", score_maximum=10.0, resource_link_id=f"RL{c}")
    # learner 0's roster shows no email: the duplicate is found through the linked account's own email
    # learner 1's account email differs in the case of a non-ASCII letter (SQLite's lower() folds ASCII only)
    emails = {0: None, 1: f"jörg.{c}@example.edu"}
    members = [Member(f"u{c}-{i}", (LEARNER,), "Active", email=emails.get(i, f"L{c}.{i}@Example.edu"))
               for i in range(N_LEARNERS)]
    results = [Result(f"r{c}-{i}", item.id, f"u{c}-{i}", 7.0, 10.0) for i in range(2, N_LEARNERS)]
    return CourseSnapshot(line_items=[item], results={item.id: results}, members=members)


@pytest.fixture
def rows_read(monkeypatch):
    """Counter: table name → rows the audit's SELECTs returned (every Session.execute is counted)."""
    counts: Counter = Counter()
    original = sqlalchemy.orm.Session.execute

    def counting(self, statement, *args, **kwargs):
        result = original(self, statement, *args, **kwargs)
        if not isinstance(statement, Select):
            return result
        frozen = result.freeze()
        table = getattr(statement.selected_columns[0], "table", None)
        counts[getattr(table, "name", "?")] += len(frozen.data)
        return frozen()

    monkeypatch.setattr(sqlalchemy.orm.Session, "execute", counting)
    return counts


def test_a_batch_reads_only_what_its_learners_need(migrated_db_url, rows_read):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        _institution(s)
    batch = [c for c in range(10, 10 + BATCH)]
    scope = AuditScope(["canvas-x"], [CourseRef("canvas-x", f"C{c:02}", None, None) for c in batch],
                       None, {"canvas-x": "canvas"})
    snapshots = {("canvas-x", f"C{c:02}"): _snapshot(c) for c in batch}
    courses = load_course_records(migrated_db_url, scope)

    rows_read.clear()
    keyed = load_tool_records(migrated_db_url, scope, snapshots, courses=courses)
    read = dict(rows_read)
    rows_read.clear()
    whole = load_tool_records(migrated_db_url, scope, courses=courses)
    whole_read = dict(rows_read)

    # what the batch's learners need, each row read once: per course 8 accounts and a manual duplicate,
    # 7 identities, 7 completions
    assert read["account"] <= BATCH * (N_LEARNERS + 1)
    assert read["identity"] <= BATCH * (N_LEARNERS - 1)
    assert read["completion"] <= BATCH * (N_LEARNERS - 1)
    assert whole_read["account"] == N_COURSES * (N_LEARNERS + 1)      # the whole table, for comparison
    assert whole_read["identity"] == N_COURSES * (N_LEARNERS - 1)
    grant = ScoreGrant(True)
    got = {k: diagnose_course(keyed.platforms["canvas-x"], c, snapshots[k], grant,
                              suite_gaps(keyed.platforms["canvas-x"], c, snapshots[k])) for k, c in courses.items()}
    want = {k: diagnose_course(whole.platforms["canvas-x"], c, snapshots[k], grant,
                               suite_gaps(whole.platforms["canvas-x"], c, snapshots[k])) for k, c in courses.items()}
    assert {k: sorted((f.identity, f.account_id) for f in d.findings) for k, d in got.items()} == \
        {k: sorted((f.identity, f.account_id) for f in d.findings) for k, d in want.items()}
    cats = Counter(f.category for d in got.values() for f in d.findings)
    assert cats == {"duplicate_account": BATCH, "launched_outside_course": BATCH}, cats
    assert all(d.expected_count == N_LEARNERS - 1 for d in got.values())
