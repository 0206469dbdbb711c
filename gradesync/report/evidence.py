"""A finding's evidence in plain words, for the report, the CSV and the CLI.

The diagnosis writes evidence as a dict per category (gradesync/diagnosis/course.py; a resync refusal adds
a "resync" dict, gradesync/resync/sender.py). Each category has a small phrase builder that consumes the
keys it knows; any key it does not know (a later version of the diagnosis may add some) is still shown,
generically, so nothing is silently dropped. Ids and URLs are not words for people: they are returned
apart (`Evidence.details`) for a details toggle or the CSV.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

# Keys that hold ids or URLs: shown behind the details toggle, never in the sentence.
DETAIL_KEYS = frozenset({"url", "task_id", "scoring_user_id", "linked_account", "completed_in_account",
                         "error_type", "response", "refused_response", "line_item_id", "identity"})


@dataclass(frozen=True)
class ScoreContext:
    """What the finding row knows beside its evidence: the scores and when the LMS result is from."""
    tool_score: float | None = None
    tool_maximum: float | None = None
    lms_score: float | None = None
    lms_maximum: float | None = None
    lms_since: datetime | None = None            # the LMS result's timestamp (the run's snapshot)
    today: datetime | None = None                # for "4 Mar" vs "4 Mar 2025"
    names: dict[str, str] = field(default_factory=dict)   # account id → "Name <email>"


_NO_CONTEXT = ScoreContext()


@dataclass(frozen=True)
class Evidence:
    words: str                                   # one or two short sentences
    details: tuple[tuple[str, str], ...]         # (label, id or URL) for the toggle / CSV


def when(value: Any, today: datetime | None = None) -> str:
    """An ISO timestamp (or datetime) as "4 Mar" (this year) or "4 Mar 2025"; unparsable text as is."""
    t = value
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(t, datetime):
        return str(value)
    same_year = today is not None and today.year == t.year
    return f"{t.day} {t:%b}" + ("" if same_year else f" {t.year}")


def score_text(score: float | None, maximum: float | None) -> str:
    """"7/10"; "7" without a maximum; "none" without a score."""
    if score is None:
        return "none"
    return f"{score:g}/{maximum:g}" if maximum else f"{score:g}"


def _percent(x: Any) -> str:
    return f"{float(x) * 100:.0f}%" if isinstance(x, (int, float)) else str(x)


def _status(code: Any) -> str:
    return f"HTTP {code}" if code not in (None, "") else "no answer"


def _refusal_reason(response: Any) -> str:
    """A platform's refusal text in a few words (Canvas "unpublished", stale timestamps, roles)."""
    text = str(response or "").lower()
    if "unpublish" in text:
        return "assignment unpublished"
    if "not available" in text or "unavailable" in text or "hidden" in text or "inactive" in text:
        return "assignment not available"
    if "timestamp" in text or "stale" in text or "older" in text:
        return "older than the grade in the LMS"
    if "student" in text or "learner" in text or "enrol" in text:
        return "user is not a student in this course"
    return "refused by the LMS"


ROLE_WORDS = (("teachingassistant", "a TA"), ("instructor", "an instructor"), ("contentdeveloper",
              "a content developer"), ("mentor", "a mentor"), ("administrator", "an administrator"))


def _role_words(roles: Any) -> str:
    text = " ".join(roles if isinstance(roles, (list, tuple)) else [str(roles)]).lower()
    for needle, words in ROLE_WORDS:
        if needle in text:
            return words
    short = [re.split(r"[#/]", str(r))[-1] for r in (roles or [])] if isinstance(roles, (list, tuple)) else [str(roles)]
    return "role " + (", ".join(short) or "none")


# Each builder: (evidence, context) → (phrases, keys consumed).
Builder = Callable[[dict, ScoreContext], tuple[list[str], set[str]]]


def _grades_not_accepted(e: dict, c: ScoreContext):
    return [f"the LMS does not let the tool send grades: {e['token']}" if e.get("token")
            else "the LMS does not let the tool send grades"], {"token"}


def _course_unreachable(e: dict, c: ScoreContext):
    msg = f"the LMS answered {_status(e.get('status'))}"
    if e.get("message"):
        msg += f": {e['message']}"
    return [msg], {"status", "message"}


def _link_not_graded(e: dict, c: ScoreContext):
    n = e.get("line_items_in_course")
    tail = f" ({n} grade column{'s' if n != 1 else ''} in the course)" if isinstance(n, int) else ""
    return [f"graded in the tool, but the LMS has no grade column for this link{tail}"], \
        {"graded_in_tool", "line_items_in_course"}


def _item_not_active(e: dict, c: ScoreContext):
    waiting = e.get("blocked_gaps") or []
    wait = ([f"{len(waiting)} grade{'s wait' if len(waiting) != 1 else ' waits'} for the item "
             "(sent once a probe score is accepted)"] if waiting else [])
    if "refused_at" in e or "response" in e:
        return [f"refused: {_refusal_reason(e.get('response'))} ({_status(e.get('status'))}, "
                f"{when(e.get('refused_at'), c.today)})", *wait], {"refused_at", "status", "blocked_gaps"}
    if "expected" in e:
        others = e.get("other_items_with_results")
        return [f"none of the {e['expected']} expected grades is in the LMS, while {others} other "
                f"item{'s' if others != 1 else ''} of the course have grades", *wait], \
            {"expected", "present", "other_items_with_results", "blocked_gaps"}
    return wait, {"blocked_gaps"}


def _not_learner(e: dict, c: ScoreContext):
    if e.get("roster") == "absent":
        return ["not on the roster"], {"roster"}
    if "gradebook_refused_at" in e:      # on the roster as a learner, but the gradebook refused the score
        return [f"the LMS gradebook refused the score: not a gradable student there ({_status(e.get('status'))}, "
                f"{when(e['gradebook_refused_at'], c.today)})"], {"roster", "roles", "gradebook_refused_at", "status"}
    if "roles" in e:
        return [f"{_role_words(e['roles'])}, not a learner"], {"roster", "roles"}
    if "status" in e:
        return [f"enrolment not active (status {e['status']})"], {"roster", "status"}
    return [], set()


def _duplicate_account(e: dict, c: ScoreContext):
    other = e.get("completed_in_account")
    who = c.names.get(other) if other else None
    words = "the work is in another account" + (f" ({who})" if who else "")
    if e.get("email"):
        words += f" with the same email {e['email']}"
    return [words + "; the LMS is linked to this one"], {"email"}


def _launched_outside_course(e: dict, c: ScoreContext):
    where = str(e.get("completion_context") or "")
    if not where or "manual login" in where:
        words = "completed after a manual login, not from the course link"
    else:
        words = f"completed from another course ({where})"
    if e.get("found_by_roster_email"):
        words += f"; found by the roster's email {e['found_by_roster_email']} (never launched from this course)"
    return [words], {"completion_context", "found_by_roster_email"}


def _outside_course_dates(e: dict, c: ScoreContext):
    done = e.get("completed_at")
    start = e.get("starts_at", e.get("line_item_start"))
    end = e.get("ends_at", e.get("line_item_end"))
    what = "the assignment's" if "line_item_start" in e or "line_item_end" in e else "the course's"
    used = {"completed_at", "starts_at", "ends_at", "line_item_start", "line_item_end"}
    if done and end and str(done) > str(end):
        return [f"completed {when(done, c.today)}, after {what} end on {when(end, c.today)}"], used
    if done and start and str(done) < str(start):
        return [f"completed {when(done, c.today)}, before {what} start on {when(start, c.today)}"], used
    return [f"completed {when(done, c.today)}, outside {what} dates"], used


def _lms_shows(c: ScoreContext) -> str:
    since = f" since {when(c.lms_since, c.today)}" if c.lms_since else ""
    return f"LMS shows {score_text(c.lms_score, c.lms_maximum)}{since}"


def _supersede_tried(e: dict, c: ScoreContext) -> list[str]:
    t = e.get("supersede_tried")
    if not isinstance(t, dict):
        return []
    return [f"an approved resend of {t.get('sent', 'the tool score')} on {when(t.get('at'), c.today)} was accepted, "
            "but the LMS kept its own value (an override or lock in the gradebook)"]


def _manual_grade_conflict(e: dict, c: ScoreContext):
    # The diagnosis may add its own "why" sentence (issue 10): the specific phrases below say it in
    # full, so it is consumed; alone, it follows what the LMS shows.
    used = {"why", "lms_normalised", "supersede_tried"}
    tried = _supersede_tried(e, c)
    if "refused_as_stale_at" in e:
        return [f"{_lms_shows(c)}; a resend was refused as older than that grade "
                f"({_status(e.get('status'))}, {when(e['refused_as_stale_at'], c.today)})", *tried], \
            used | {"refused_as_stale_at", "status"}
    if "scoring_user_id" in e:
        return [f"{_lms_shows(c)}, entered by a person in the LMS", *tried], used
    if "last_sent" in e:
        sent = f"; the tool last sent {e['last_sent']}"
        if e.get("last_sent_at"):
            sent += f" on {when(e['last_sent_at'], c.today)}"
        later = (f" (the LMS grade, dated {when(e['result_timestamp'], c.today)}, is later)"
                 if e.get("result_timestamp") else "")
        return [_lms_shows(c) + sent + later, *tried], used | {"last_sent", "last_sent_at", "result_timestamp"}
    if "result_timestamp" in e:
        return [f"LMS shows {score_text(c.lms_score, c.lms_maximum)}, dated {when(e['result_timestamp'], c.today)}: "
                f"after the tool's last accepted send on {when(e.get('last_sent_at'), c.today)}", *tried], \
            used | {"result_timestamp", "last_sent_at"}
    if e.get("why"):
        return [f"{_lms_shows(c)}; {e['why']}", *tried], used
    return tried, used - {"why"}


def _score_mismatch(e: dict, c: ScoreContext):
    sent = e.get("lms_value_sent_by_tool_at")
    own = f"the tool's own score, sent {when(sent, c.today)}" if sent else "an earlier score from the tool"
    return [f"{_lms_shows(c)} ({own}); the tool now has {score_text(c.tool_score, c.tool_maximum)}"], \
        {"tool_normalised", "lms_normalised", "lms_value_sent_by_tool_at"}


def _missing_in_lms(e: dict, c: ScoreContext):
    n = e.get("passbacks")
    if n == 0:
        return ["no grade in the LMS; the tool has no record of sending it"], {"passbacks", "last_status"}
    if isinstance(n, int):
        return [f"no grade in the LMS; the tool sent it {n} time{'s' if n != 1 else ''}, last answer "
                f"{_status(e.get('last_status'))}"], {"passbacks", "last_status"}
    return [], set()


BUILDERS: dict[str, Builder] = {
    "grades_not_accepted": _grades_not_accepted, "course_unreachable": _course_unreachable,
    "link_not_graded": _link_not_graded, "item_not_active": _item_not_active, "not_learner": _not_learner,
    "duplicate_account": _duplicate_account, "launched_outside_course": _launched_outside_course,
    "outside_course_dates": _outside_course_dates, "manual_grade_conflict": _manual_grade_conflict,
    "score_mismatch": _score_mismatch, "missing_in_lms": _missing_in_lms,
}


def _resync_refusal(r: Any, c: ScoreContext) -> str:
    if not isinstance(r, dict):
        return f"resync: {r}"
    status = r.get("refused_status", r.get("status"))
    reason = _refusal_reason(r.get("refused_response", r.get("response")))
    at = r.get("refused_at")
    return f"resync refused: {reason} ({_status(status)}{', ' + when(at, c.today) if at else ''})"


def _is_detail(key: str, value: Any) -> bool:
    return key in DETAIL_KEYS or key.endswith(("_id", "_url")) or (
        isinstance(value, str) and value.startswith(("http://", "https://")))


_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT")


def _generic(key: str, value: Any, c: ScoreContext) -> str:
    if key == "why" and isinstance(value, str):
        return value                     # already a sentence
    label = key.replace("_", " ")
    if isinstance(value, float):
        value = f"{value:.4g}"
    elif isinstance(value, str) and _ISO_TIME.match(value):
        value = when(value, c.today)
    elif isinstance(value, (list, tuple)):
        value = ", ".join(str(x) for x in value)
    elif isinstance(value, dict):
        value = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items())
    return f"{label}: {value}"


def evidence_in_words(category: str, evidence: dict[str, Any] | None,
                      context: ScoreContext | None = None) -> Evidence:
    """The evidence of one finding as plain words (+ its ids and URLs apart). Never raises: an unknown
    category or unexpected keys fall back to "key: value" phrases."""
    e = evidence or {}
    c = context or _NO_CONTEXT
    phrases: list[str] = []
    used: set[str] = set()
    builder = BUILDERS.get(category)
    if builder is not None:
        try:
            phrases, used = builder(e, c)
        except Exception:  # noqa: BLE001 - evidence from another version: words, never a broken report
            phrases, used = [], set()
    if "resync" in e:
        phrases.append(_resync_refusal(e["resync"], c))
        used.add("resync")
    details = []
    for k, v in e.items():
        if k in used or v is None or v == "":
            continue
        if _is_detail(k, v):
            details.append((k.replace("_", " "), str(v)))
        else:
            phrases.append(_generic(k, v, c))
    words = "; ".join(p for p in phrases if p) or "no evidence recorded"
    return Evidence(words[:1].upper() + words[1:], tuple(details))
