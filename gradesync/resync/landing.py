"""Did a resent score land? What to POST so the read-back can tell, and how to read the read-back.

Default (spec, Moodle, D2L, Blackboard): a 2xx whose read-back shows the tool's normalised score landed;
a 2xx whose read-back shows another value means the platform applied something else — a D2L cap at
the maximum (lti-platform-behavior.md §2.5, §4.5), a Canvas late-policy deduction (§7 #14), a Moodle
override that keeps the final grade (§4.3, §10) — so the task ends `failed:accepted_not_shown` at once
with the platform's value as evidence: re-sending would be ignored the same way.

Canvas is the one vendor with its own rule here (`CanvasLanding`), for two facts:
- every unapproved resync carries `prioritize_non_tool_grade: true`, and Canvas then keeps *any*
  present submission score — a teacher's, or the tool's own older one (scores_controller
  `submission_has_score?`, §4.2) — while still writing the Lti::Result row;
- AGS results serialise the Lti::Result, not the submission: `Lti::Result#scaled_result_score`
  (instructure/canvas-lms app/models/lti/result.rb@02bf0940) returns the raw result_score while the
  submission's grader_id is negative (a tool graded) and raw × result_maximum / points_possible once a
  Canvas user graded it.
How we tell that Canvas applied the tool's grade: the score is sent on a maximum different from the line
item's scoreMaximum (both doubled when they are equal; the normalised value is unchanged). If Canvas
applied it, the row reads back raw: sent given / sent maximum = the tool's normalised score. If Canvas
kept a person's grade, the same row reads back rescaled: sent given / points possible — which differs
from the tool's value exactly because the maxima differ. A zero reads back zero either way, so a zero
cannot be confirmed; nor can anything when the item's maximum is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

from gradesync.diagnosis.expected import TOLERANCE
from lti_client.registration import Vendor
from lti_client.types import Result

SHOWN = "shown"                      # the read-back proves the tool's score landed
OTHER_VALUE = "other_value"          # accepted, but the platform shows another value
KEPT_BY_PERSON = "kept_by_person"    # Canvas kept a grade entered by a person
UNCONFIRMABLE = "unconfirmable"      # the read-back cannot tell


@dataclass(frozen=True)
class Landing:
    """The verdict on a read-back after a 2xx, and the sentence that explains it."""
    verdict: str
    note: str


def describe(result: Result | None) -> str:
    """`score/maximum` of a result, or "no score"."""
    if result is None or result.result_score is None:
        return "no score"
    return f"{result.result_score:g}/{result.result_maximum:g}"


def normalised(result: Result | None) -> float | None:
    """resultScore / resultMaximum (spec default maximum 1), or None without a score."""
    if result is None or result.result_score is None:
        return None
    return result.result_score / (result.result_maximum or 1.0)


class LandingRule:
    """The spec rule: the read-back's normalised value is the proof."""

    # Whether the sender must know the line item's scoreMaximum (read from the course's line items).
    needs_item_maximum = False
    # Whether an unapproved send leaves a present grade in place (so it must not be sent at all).
    keeps_present_grade = False

    def sent_values(self, given: float, maximum: float, item_maximum: float | None) -> tuple[float, float]:
        """(scoreGiven, scoreMaximum) to POST for the tool's `given`/`maximum`."""
        return given, maximum

    def container_of(self, line_item_id: str) -> str | None:
        """The line-items container of a line item URL, when the vendor's URL shape says it."""
        return None

    def held_note(self, before: Result | None) -> str:
        """Why a send is held for approval (only rules with `keeps_present_grade` hold)."""
        return f"the LMS shows {describe(before)}: approve the supersede to replace it"

    def judge(self, after: Result | None, tool_normalised: float, sent: tuple[float, float],
              item_maximum: float | None) -> Landing:
        """The verdict on the read-back `after` of an accepted send of `sent`."""
        shown = normalised(after)
        if shown is not None and abs(shown - tool_normalised) <= TOLERANCE:
            return Landing(SHOWN, f"the LMS shows {describe(after)}")
        return Landing(OTHER_VALUE, f"the platform accepted the score but shows {describe(after)}: it applied "
                                    "another value (a cap at the maximum, a late-policy deduction, an override "
                                    "or lock in the gradebook)")


class CanvasLanding(LandingRule):
    """Canvas: prove the tool's grade landed despite `prioritize_non_tool_grade` (see the module doc)."""

    needs_item_maximum = True
    # scores_controller `submission_has_score?` (§4.2): with prioritize_non_tool_grade any present
    # submission score stays — a send to a cell that shows a score cannot change the gradebook, and
    # would only overwrite the Lti::Result row that the audit reads (hiding the gap).
    keeps_present_grade = True
    FACTOR = 2.0

    def container_of(self, line_item_id: str) -> str | None:
        # §2.2: item id = https://<host>/api/lti/courses/<course>/line_items/<id>; the container is the
        # same path without the last segment (used when the course's lineitems_url is not on record).
        head, sep, tail = line_item_id.split("?", 1)[0].rstrip("/").rpartition("/")
        return head if sep and head.endswith("/line_items") and tail else None

    def held_note(self, before: Result | None) -> str:
        """Why a send to a cell that shows a grade is held for approval instead of POSTed."""
        return (f"the LMS shows {describe(before)}; Canvas keeps a present grade under "
                "prioritize_non_tool_grade (scores_controller submission_has_score?), so the send could not "
                "change the gradebook: approve the supersede to replace it")

    def sent_values(self, given: float, maximum: float, item_maximum: float | None) -> tuple[float, float]:
        if item_maximum is not None and abs(maximum - item_maximum) <= 1e-9 * max(1.0, abs(item_maximum)):
            return given * self.FACTOR, maximum * self.FACTOR
        return given, maximum

    def judge(self, after: Result | None, tool_normalised: float, sent: tuple[float, float],
              item_maximum: float | None) -> Landing:
        base = super().judge(after, tool_normalised, sent, item_maximum)
        sent_given, sent_max = sent
        if base.verdict == SHOWN:
            if item_maximum is None:
                return Landing(UNCONFIRMABLE, f"Canvas accepted the score and shows {describe(after)}, but the "
                                              "line item's maximum is unknown, so a grade a person entered that "
                                              "Canvas kept cannot be ruled out: check the gradebook")
            if sent_given == 0:
                return Landing(UNCONFIRMABLE, "Canvas accepted a zero score; a zero reads back the same whether "
                                              "Canvas applied it or kept a grade a person entered "
                                              "(Lti::Result#scaled_result_score): check the gradebook")
            return base
        if after is not None and after.result_score is not None and item_maximum and sent_max \
                and abs(after.result_maximum - sent_max) <= 1e-9 * sent_max \
                and abs(normalised(after) - sent_given / item_maximum) <= TOLERANCE:
            return Landing(KEPT_BY_PERSON, f"Canvas kept a grade entered by a person: the score was accepted but "
                                           f"reads back rescaled as {describe(after)} ({sent_given:g} sent on "
                                           f"{sent_max:g}, the item has {item_maximum:g} points), which Canvas "
                                           "does only when a Canvas user graded the submission "
                                           "(Lti::Result#scaled_result_score); AGS cannot show that grade")
        return base


_RULES: dict[Vendor, LandingRule] = {Vendor.canvas: CanvasLanding()}
_DEFAULT = LandingRule()


def landing_rule(vendor: Vendor | str) -> LandingRule:
    """The landing rule of a vendor (the spec rule unless the vendor has its own)."""
    return _RULES.get(Vendor(vendor), _DEFAULT)
