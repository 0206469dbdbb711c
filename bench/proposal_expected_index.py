"""Evidence for a proposed change to gradesync/diagnosis/expected.py (not applied; that file is not bench's).

    .venv/bin/python bench/proposal_expected_index.py [--size 300000] [--shared 50]

`expected_lms_users` part (b) walks *every* completion of the link's activity on the whole platform, for
every course that links the activity. When many courses share an activity (a content catalogue) that is
courses × completions-per-activity: quadratic in the platform's size. The proposal indexes completions
once per platform by (platform, context_id, activity_id), preserving their order, and reads only the
course's own. This script runs the current reconcile and the indexed one on the same synthetic inputs
(bench/reconcile.py's), checks the rows are identical, and prints both times.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from reconcile import make_inputs  # noqa: E402


def by_context(rec) -> dict:
    """(platform, context_id, activity_id) → {account_id: completion}, in rec.completions order."""
    idx = getattr(rec, "_bench_by_context", None)
    if idx is None:
        idx = defaultdict(dict)
        for activity, by_account in rec.completions.items():
            for account_id, c in by_account.items():
                if c.platform and c.context_id:
                    idx[(c.platform, c.context_id, activity)][account_id] = c
        rec._bench_by_context = idx
    return idx


def expected_lms_users_indexed(rec, course, link, learners):
    """Same contract and order as expected.expected_lms_users, reading only this course's completions."""
    from gradesync.diagnosis.expected import choose_completion
    platform, ctx = course.course.platform, course.course.context_id
    users: dict[str, None] = {}
    for m in learners:
        if choose_completion(rec, link.activity_id, m.user_id) is not None:
            users[m.user_id] = None
    for account_id in by_context(rec).get((platform, ctx, link.activity_id), {}):
        user = rec.lms_user_by_account.get(account_id)
        if user is not None:
            users[user] = None
    return list(users)


def reconcile_all(tool, snapshots) -> tuple[list, float]:
    from gradesync.diagnosis.expected import expected_grades
    t = time.process_time()
    rows = [g for key, course in tool.courses.items()
            for g in expected_grades(tool.platforms[key[0]], course, snapshots[key])]
    return rows, time.process_time() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300_000)
    ap.add_argument("--shared", type=int, default=50)
    args = ap.parse_args()
    import gradesync.diagnosis.expected as expected

    tool, snapshots, _, _ = make_inputs(args.size, shared=args.shared)
    current, current_s = reconcile_all(tool, snapshots)
    original = expected.expected_lms_users
    expected.expected_lms_users = expected_lms_users_indexed        # expected_grades looks it up globally
    try:
        indexed, indexed_s = reconcile_all(tool, snapshots)
    finally:
        expected.expected_lms_users = original
    if current != indexed:
        raise AssertionError("the indexed reconcile produced different rows")
    print(json.dumps({"expected_grades": len(current), "shared_activities": args.shared,
                      "current_cpu_s": round(current_s, 2), "indexed_cpu_s": round(indexed_s, 2),
                      "speedup": round(current_s / indexed_s, 1), "rows_identical": True}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
