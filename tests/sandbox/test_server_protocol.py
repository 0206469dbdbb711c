"""What the sandbox's own HTTP serving adds (sandbox_lms/server.py): reason phrases written byte for byte."""
from __future__ import annotations

from sandbox_helpers import SCORE_TYPE


def test_a_profile_reason_is_the_status_line_and_the_header_is_not_sent(sandbox, tool):
    moodle = tool("moodle")
    token = moodle.token()
    # §10: a refused score's text is the raw body after "Incorrect score received" — braces, quotes,
    # non-ASCII as UTF-8 — and its body is [].
    body = '{"userId": "t1", "scoreGiven": 5, "scoreMaximum": 10, "comment": "très ✓", ' \
           '"activityProgress": "Completed", "gradingProgress": "FullyGraded", ' \
           '"timestamp": "2030-01-01T00:00:00.000+00:00"}'.encode("utf-8")
    r = moodle.http.post(moodle.url("scores"), content=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": SCORE_TYPE})
    assert r.status_code == 400 and r.content == b"[]"
    assert r.extensions["reason_phrase"] == b"Incorrect score received" + body
    assert "x-sandbox-reason" not in r.headers
    # Without a profile reason: the standard phrase, still no header.
    r = moodle.get(moodle.url("line_items"), token, accept="")
    assert r.status_code == 200 and r.extensions["reason_phrase"] == b"OK" and "x-sandbox-reason" not in r.headers
