"""An audit's progress is read from the database (the run's course_count and its course_audit rows), so
the CLI can follow batches that run in other processes."""
from __future__ import annotations

import models as m
from gradesync.audit.persist import start_run
from gradesync.audit.progress_view import RunProgress, newest_run_id, run_progress


def _course_done(url: str, run_id: int, context_id: str) -> None:
    with m.session_scope(m.make_engine(url)) as s:
        s.add(m.CourseAudit(run_id=run_id, platform="p", context_id=context_id, status="audited"))


def test_progress_of_the_newest_run_started_after_a_point(migrated_db_url):
    url = migrated_db_url
    earlier = start_run(url, "nightly", {"course_count": 9}, None)
    after = newest_run_id(url)
    assert after == earlier
    assert run_progress(url, after) is None                       # nothing started since

    run_id = start_run(url, "course-audit", {"course_count": 3}, None)
    assert run_progress(url, after) == RunProgress(run_id, 0, 3)
    _course_done(url, run_id, "c1")
    _course_done(url, run_id, "c2")
    _course_done(url, earlier, "c9")                              # another run's rows do not count
    assert run_progress(url, after) == RunProgress(run_id, 2, 3)

    other = start_run(url, "nightly", {"course_count": 50}, None)
    assert run_progress(url, after).run_id == other               # newest of any kind …
    assert run_progress(url, after, kind="course-audit") == RunProgress(run_id, 2, 3)   # … or of one kind


def test_an_empty_database_has_no_run(migrated_db_url):
    assert newest_run_id(migrated_db_url) == 0
    assert run_progress(migrated_db_url, 0) is None


def test_the_cli_bar_follows_the_run_started_inside_it(migrated_db_url):
    import io

    from rich.console import Console

    from cli.progress import RunProgressBar

    url = migrated_db_url
    start_run(url, "course-audit", {"course_count": 7}, None)    # before the bar: someone else's run
    with RunProgressBar(url, "course-audit", Console(file=io.StringIO()), poll_seconds=60) as bar:
        run_id = start_run(url, "course-audit", {"course_count": 3}, None)
        _course_done(url, run_id, "c1")
        bar.refresh()
        task = bar.bar.tasks[0]
        assert (task.completed, task.total, task.description) == (1, 3, f"audit run {run_id}: courses")
