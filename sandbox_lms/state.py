"""The sandbox LMS's in-memory state: registrations, courses, rosters, line items, results.

Pure data. Gradebook semantics (rescaling, stale-timestamp checks, clearing) live in the profiles and
`gradebook.py`; the world builder (`worlds/`) fills these records directly. Times are aware UTC.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE, SCOPE_NRPS})


@dataclass
class Member:
    user_id: str                       # the LTI `sub`
    roles: list[str]                   # full URIs
    status: str = "Active"             # Active | Inactive | Deleted (profiles decide what they show)
    name: str | None = None
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None


@dataclass
class ResultRecord:
    user_id: str
    result_score: float | None         # on the line item's scale (already rescaled)
    result_maximum: float              # the line item's scoreMaximum when the score was stored
    stored_at: datetime                # the platform's stored time (Canvas: tool timestamp or edit time; Moodle: timemodified)
    comment: str | None = None
    scoring_user_id: str | None = None # set by an instructor's manual grade (profiles may hide it)
    by_tool: bool = True               # False after an instructor's manual grade
    tool_posted: bool = True           # the tool has posted a score for this cell at least once
                                       # (Canvas lists only such rows in results, §3.2)
    # Canvas keeps two records per cell (§3.2, §4.2): the submission (result_score above, on the item's
    # scale; by_tool = its grader_id is the tool's, negative) and the Lti::Result row the tool's POSTs
    # write: the raw scoreGiven and the scoreMaximum as sent. None = the row holds result_score /
    # result_maximum (a world built without a raw send). Other profiles ignore these two.
    lti_score: float | None = None
    lti_maximum: float | None = None


@dataclass
class LineItemRecord:
    id: int                            # local numeric id; the profile builds the URL id
    label: str
    score_maximum: float
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    active: bool = True                # Canvas "published" / Blackboard "Available"
    deleted: bool = False
    results: dict[str, ResultRecord] = field(default_factory=dict)   # by user_id


@dataclass
class CourseRecord:
    context_id: str
    title: str
    members: list[Member] = field(default_factory=list)
    line_items: list[LineItemRecord] = field(default_factory=list)
    concluded: bool = False            # Canvas: 404 (or 422 with the flag) on every AGS/NRPS call
    tool_removed: bool = False         # tool no longer deployed in the course: 401 on service calls

    def member(self, user_id: str) -> Member | None:
        return next((m for m in self.members if m.user_id == user_id), None)

    def line_item(self, item_id: int) -> LineItemRecord | None:
        return next((li for li in self.line_items if li.id == item_id and not li.deleted), None)


@dataclass
class FaultConfig:
    """Fault and load injection for one registration; all settable at start and at run time."""
    latency_ms: float = 0.0            # fixed latency per request
    latency_jitter_ms: float = 0.0     # plus uniform random 0..jitter
    max_in_flight: int | None = None   # excess requests get the profile's throttle response
    error_rate_5xx: float = 0.0        # fraction of service requests answered 500/503
    timeout_rate: float = 0.0          # fraction of service requests that hang past the client timeout
    hang_seconds: float = 30.0
    malformed_json_rate: float = 0.0   # fraction of JSON bodies cut short
    paging_loop: bool = False          # next link points back at the same page
    token_lifetime_s: int = 3600       # expires_in and enforced expiry
    down: bool = False                 # every request of this registration → 503
    seed: int = 0                      # seeds this registration's fault dice (reproducible runs)


@dataclass
class Registration:
    name: str                          # URL path prefix, e.g. "canvas-main"
    profile: str                       # canvas | moodle | d2l | blackboard | spec
    client_id: str
    issuer: str
    key_id: str
    public_key_pem: str
    granted_scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))
    courses: dict[str, CourseRecord] = field(default_factory=dict)
    faults: FaultConfig = field(default_factory=FaultConfig)
    next_line_item_id: int = 1000
    type_id: int = 1                   # Moodle tool type id: the `?type_id=` of every service URL (§2.3)
    deployment_id: str = "1"           # D2L: part of the AGS/NRPS path


@dataclass
class LmsState:
    registrations: dict[str, Registration] = field(default_factory=dict)

    def by_client_id(self, client_id: str) -> Registration | None:
        return next((r for r in self.registrations.values() if r.client_id == client_id), None)
