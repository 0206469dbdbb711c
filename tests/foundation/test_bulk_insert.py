"""bulk_insert (COPY on PostgreSQL, one executemany on SQLite) stores exactly what
`session.execute(insert(model), rows)` stores: JSON, aware datetimes, NULLs, enums, text with tabs,
newlines, backslashes and non-ASCII characters."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert
from sqlmodel import select

import models as m
from models.db import bulk_insert

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
AWKWARD = ["tab\there", "new\nline", "carriage\r\nreturn", "back\\slash \\N \\.", "naïve café 学生 🎓",
           "quote ' \" end", "", "  padded  "]


def _findings(run_id: int) -> list[dict]:
    rows = []
    for i, text in enumerate(AWKWARD):
        rows.append(dict(run_id=run_id, identity=f"missing_in_lms|p|c|rl|{text}|{i}",
                         category=m.FindingCategory.missing_in_lms if i % 2 else m.FindingCategory.not_learner,
                         level="learner", platform="canvas-x", context_id=f"C-{text}", resource_link_id=None,
                         activity_id="A1" if i % 3 else None, line_item_id=text, account_id=None,
                         lms_user_id=f"u{i}", tool_score=7.5 if i % 2 else None, tool_maximum=10.0,
                         lms_score=None, lms_maximum=None,
                         evidence={"text": text, "n": i, "nested": {"list": [1, None, text]}, "none": None},
                         action=text))
    return rows


def _results(run_id: int) -> list[dict]:
    return [dict(run_id=run_id, platform="canvas-x", context_id="C1", line_item_id=f"https://lms/li/{i}?x=1",
                 user_id=None if i == 0 else f"u{i}", result_score=None if i == 1 else i / 3,
                 result_maximum=10.0, scoring_user_id=None, comment=text,
                 timestamp=None if i == 2 else T0 + timedelta(microseconds=i))
            for i, text in enumerate(AWKWARD)]


def _members(run_id: int) -> list[dict]:
    return [dict(run_id=run_id, platform="canvas-x", context_id="C1", user_id=f"u{i}",
                 roles=[] if i == 0 else ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", text],
                 status=None if i == 1 else "Active", name=text, email=None if i == 2 else f"{i}@é.example")
            for i, text in enumerate(AWKWARD)]


def _stored(s, model, run_id: int) -> list[dict]:
    rows = s.exec(select(model).where(model.run_id == run_id).order_by(model.id)).all()
    return [{k: v for k, v in r.model_dump().items() if k not in ("id", "run_id")} for r in rows]


@pytest.mark.parametrize("model,make", [(m.Finding, _findings), (m.LmsResult, _results), (m.LmsMember, _members)])
def test_bulk_insert_stores_what_the_orm_insert_stores(migrated_db_url, model, make):
    engine = m.make_engine(migrated_db_url)
    with m.session_scope(engine) as s:
        bulk_run, orm_run = m.AuditRun(kind="nightly"), m.AuditRun(kind="nightly")
        s.add_all([bulk_run, orm_run])
        s.flush()
        assert bulk_insert(s, model, make(bulk_run.id)) == len(AWKWARD)
        s.execute(insert(model), make(orm_run.id))
    with m.session_scope(engine) as s:
        got, want = _stored(s, model, bulk_run.id), _stored(s, model, orm_run.id)
    assert len(got) == len(AWKWARD)
    assert got == want
    # and what was written is what was given (UTC-normalised datetimes compare equal to T0's zone)
    for row, given in zip(got, make(bulk_run.id)):
        for k, v in given.items():
            if k != "run_id":
                assert row[k] == v, (k, row[k], v)


def test_bulk_insert_of_nothing_writes_nothing(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        assert bulk_insert(s, m.LmsMember, []) == 0
        assert s.exec(select(m.LmsMember)).all() == []


def test_bulk_insert_is_part_of_the_session_transaction(migrated_db_url):
    engine = m.make_engine(migrated_db_url)
    with pytest.raises(RuntimeError):
        with m.session_scope(engine) as s:
            run = m.AuditRun(kind="nightly")
            s.add(run)
            s.flush()
            bulk_insert(s, m.LmsMember, _members(run.id))
            assert len(s.exec(select(m.LmsMember)).all()) == len(AWKWARD)     # visible inside
            raise RuntimeError("rolled back")
    with m.session_scope(engine) as s:
        assert s.exec(select(m.LmsMember)).all() == []
