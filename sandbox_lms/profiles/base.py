"""The profile contract and its spec-level defaults (AGS 2.0, NRPS 2.0, RFC 6749/6750).

A vendor profile overrides only what its platform does differently, with a comment naming the fact
(lti-platform-behavior.md section) — so every quirk lives in exactly one place. The server code
(`services.py`, `tokens.py`) never asks which vendor it serves; it asks the profile.
"""
from __future__ import annotations

from enum import Enum
from typing import Sequence

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.gradebook import IncomingScore, ScorePolicy
from sandbox_lms.paging import next_only_page
from sandbox_lms.responses import (LINEITEM, MEMBERSHIP_CONTAINER, SCORE, drop_none, empty_response,
                                   json_response, media_type_of)
from sandbox_lms.state import (LEARNER, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS,
                               SCOPE_RESULT_READONLY, SCOPE_SCORE, CourseRecord, LineItemRecord, Member,
                               Registration, ResultRecord)

MEMBERSHIP_NS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


class TokenProblem(str, Enum):
    """Why the token endpoint refuses; each profile maps these to its own status and body."""
    content_type = "content_type"
    missing_field = "missing_field"
    grant_type = "grant_type"
    assertion_type = "assertion_type"
    undecodable = "undecodable"
    unknown_client = "unknown_client"
    signature = "signature"
    issuer = "issuer"
    audience = "audience"
    expired = "expired"
    iat_old = "iat_old"
    iat_future = "iat_future"
    missing_claim = "missing_claim"
    scope = "scope"


class Stale(Enum):
    """A stale score the platform answers with success but does not apply (spec §4.1 "may just ignore")."""
    ignore = "ignore"


# Which scopes open each endpoint (any one of them suffices). AGS §3.1: lineitem or lineitem.readonly for GETs.
ENDPOINT_SCOPES: dict[str, frozenset[str]] = {
    "line_items": frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY}),
    "line_item": frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY}),
    "line_items_create": frozenset({SCOPE_LINEITEM}),
    "results": frozenset({SCOPE_RESULT_READONLY}),
    "scores": frozenset({SCOPE_SCORE}),
    "memberships": frozenset({SCOPE_NRPS}),
}
_OAUTH_ERROR = {
    TokenProblem.content_type: "invalid_request", TokenProblem.missing_field: "invalid_request",
    TokenProblem.grant_type: "unsupported_grant_type", TokenProblem.assertion_type: "invalid_request",
    TokenProblem.undecodable: "invalid_request", TokenProblem.unknown_client: "invalid_client",
    TokenProblem.scope: "invalid_scope",
}


class Profile:
    """Spec behaviour; vendor profiles subclass and override."""

    name = "spec"
    # --- token endpoint (§1) ---
    form_content_type_exact = False          # Moodle compares the Content-Type string exactly
    audience_checked = True
    issuer_checked = True                    # iss must equal the client_id (D2L FAQ; brief)
    required_claims: tuple[str, ...] = ("iss", "sub", "aud", "exp", "iat")
    iat_max_age_s: int | None = 300          # Canvas oauth2_jwt_iat_ago_in_seconds (§1.2), used as the norm
    iat_future_s: int = 30                   # Canvas oauth2_jwt_iat_future_buffer (§1.2)
    all_or_nothing_scopes = False            # RFC 6749 §3.3: the server MAY grant fewer and says so in `scope`
    token_media_type = "application/json"    # RFC 6749 §5.1 (Moodle 5.1's token.php sends text/html, §10)
    # --- scores ---
    policy = ScorePolicy()
    timestamp_needs_zone = True              # AGS §4.7: ISO 8601 "with a sub-second precision" and a zone
    score_content_type_strict = True         # AGS §3.4 media type
    # --- paging defaults (spec: any size; `limit` is a hint) ---
    page_default = {"line_items": 100, "results": 100, "memberships": 100}
    link_filter_param = "resource_link_id"    # AGS §3.2 container filter for a resource link
    page_max = {"line_items": 100, "results": 100, "memberships": 100}

    # ---------------- token ----------------
    def expected_audience(self, token_url: str) -> str:
        """The `aud` the assertion must name (the token URL of the host called, unless a profile fixes it)."""
        return token_url

    def token_refusal(self, problem: TokenProblem, detail: str) -> Response:
        """RFC 6749 §5.2 error body; unknown clients get 401 invalid_client, bad assertions invalid_grant
        (RFC 7523 §3.1)."""
        error = _OAUTH_ERROR.get(problem, "invalid_grant")
        status = 401 if problem is TokenProblem.unknown_client else 400
        return json_response({"error": error, "error_description": detail}, status,
                             headers={"Cache-Control": "no-store"})

    def grant_scopes(self, requested: set[str], allowed: set[str]) -> tuple[frozenset[str], Response | None]:
        """Granted scopes, or a refusal. Default: the intersection; invalid_scope only if it is empty."""
        granted = frozenset(requested & allowed)
        if self.all_or_nothing_scopes:
            missing = sorted(requested - allowed)
            if missing or not requested:
                return granted, self.token_refusal(
                    TokenProblem.scope,
                    "The following scopes were requested, but not granted: " + " ".join(missing))
        elif not granted:
            return granted, self.token_refusal(TokenProblem.scope, "No requested scope is granted")
        return granted, None

    # ---------------- access ----------------
    def scopes_for(self, kind: str) -> frozenset[str]:
        """Scopes that open endpoint `kind` (any one suffices)."""
        return ENDPOINT_SCOPES[kind]

    def unauthorized(self, message: str) -> Response:
        """401 for a missing, unknown or expired bearer token (RFC 6750 §3.1)."""
        return json_response({"error": "invalid_token", "error_description": message}, 401,
                             headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def insufficient_scope(self) -> Response:
        """RFC 6750 §3.1: insufficient_scope → 403."""
        return json_response({"error": "insufficient_scope"}, 403,
                             headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})

    def problem(self, status: int, detail: str) -> Response:
        """An error body for service endpoints (RFC 7807 shape; the spec prescribes none)."""
        return json_response({"status": status, "detail": detail}, status, "application/problem+json")

    def not_found(self, detail: str) -> Response:
        """404 for an unknown course, line item or route."""
        return self.problem(404, detail)

    def course_refusal(self, course: CourseRecord) -> Response | None:
        """Course-wide refusals. Tool removed → 401 (Canvas "Access Token not linked to a Tool associated
        with this Context", §4.2 step 1, assumed alike elsewhere); concluded → 404 (Canvas default §4.2
        step 2; other platforms unconfirmed, assumed the same)."""
        if course.tool_removed:
            return self.unauthorized("Access Token not linked to a Tool associated with this Context")
        if course.concluded:
            return self.not_found("The specified resource does not exist.")
        return None

    def request_refusal(self, request: Request, reg: Registration, kind: str) -> Response | None:
        """Protocol-level refusals before the endpoint runs (Moodle: type_id, Accept). None by default."""
        return None

    def item_missing(self, item: LineItemRecord | None) -> Response:
        """The line item does not exist (or was deleted)."""
        return self.not_found("Line item not found")

    # ---------------- line items ----------------
    def filter_line_items(self, items: Sequence[LineItemRecord], request: Request) -> list[LineItemRecord]:
        """AGS §3.2 container filters: resource_link_id, resource_id, tag (AND). Deleted items are gone."""
        q = request.query_params
        rlid, rid, tag = q.get(self.link_filter_param), q.get("resource_id"), q.get("tag")
        return [li for li in items if not li.deleted
                and (rlid is None or li.resource_link_id == rlid)
                and (rid is None or li.resource_id == rid)
                and (tag is None or li.tag == tag)]

    def page(self, url: URL, rows: Sequence, kind: str, loop: bool) -> tuple[Sequence, str | None]:
        """One page of `rows` and its Link header (None when no header is due)."""
        return next_only_page(url, rows, default=self.page_default[kind], maximum=self.page_max[kind], loop=loop)

    def line_item_json(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord) -> dict:
        """AGS §3.1 line item fields; unset ones omitted."""
        return drop_none({
            "id": urls.line_item_url(base_url, reg, course.context_id, li.id),
            "label": li.label, "scoreMaximum": li.score_maximum,
            "resourceLinkId": li.resource_link_id, "resourceId": li.resource_id, "tag": li.tag,
            "startDateTime": li.start_date_time.isoformat() if li.start_date_time else None,
            "endDateTime": li.end_date_time.isoformat() if li.end_date_time else None,
        })

    def create_refusal(self, request: Request) -> Response | None:
        """Content-Type check for a line item POST (strict profiles)."""
        if media_type_of(request.headers.get("content-type")) not in (LINEITEM, "application/json"):
            return self.problem(415, "Content-Type must be " + LINEITEM)
        return None

    # ---------------- results ----------------
    def visible_results(self, reg: Registration, course: CourseRecord, li: LineItemRecord,
                        user_id: str | None) -> list[ResultRecord]:
        """AGS §3.3: a record for each user with a non-empty resultScore (empty ones skipped)."""
        if user_id is not None:
            rec = li.results.get(user_id)
            return [rec] if rec is not None and rec.result_score is not None else []
        return [r for r in li.results.values() if r.result_score is not None]

    def result_json(self, ids: urls.ItemUrls, rec: ResultRecord, user_filtered: bool) -> dict:
        """AGS §3.3 result fields, with scoringUserId when a person scored it."""
        return drop_none({
            "id": ids.result(rec.user_id),
            "scoreOf": ids.item,
            "userId": rec.user_id, "resultScore": rec.result_score, "resultMaximum": rec.result_maximum,
            "scoringUserId": rec.scoring_user_id, "comment": rec.comment,
        })

    # ---------------- memberships ----------------
    def visible_members(self, course: CourseRecord, role: str | None) -> list[Member] | None:
        """NRPS: current memberships (Active and Inactive; Deleted only in differences reports), optionally
        by role (full URI or short context role name)."""
        members = [m for m in course.members if m.status != "Deleted"]
        if role is None:
            return members
        full = role if "://" in role else MEMBERSHIP_NS + role
        return [m for m in members if full in m.roles]

    def member_json(self, m: Member) -> dict:
        """NRPS member fields."""
        return drop_none({"user_id": m.user_id, "roles": list(m.roles), "status": m.status, "name": m.name,
                          "given_name": m.given_name, "family_name": m.family_name, "email": m.email})

    def membership_media_type(self) -> str:
        return MEMBERSHIP_CONTAINER

    # ---------------- scores ----------------
    def score_content_type_refusal(self, request: Request) -> Response | None:
        """AGS §3.4: the score media type."""
        if self.score_content_type_strict and media_type_of(request.headers.get("content-type")) != SCORE:
            return self.bad_score("Content-Type must be " + SCORE, status=415)
        return None

    def bad_score(self, message: str, status: int = 400) -> Response:
        """A refused score body."""
        return self.problem(status, message)

    def gradable(self, member: Member | None) -> bool:
        """Whether the platform takes a score for this member."""
        return member is not None and LEARNER in member.roles and member.status != "Deleted"

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        """Refusal for a user the platform will not grade (spec prescribes none: 422 assumed)."""
        if self.gradable(course.member(user_id)):
            return None
        return self.problem(422, f"User {user_id} is not a learner in this context")

    def stale(self, li: LineItemRecord, rec: ResultRecord | None, score: IncomingScore) -> Response | Stale | None:
        """AGS §4.1: "MUST NOT update a result if the last timestamp on record is later than the incoming"
        — the spec lets the platform ignore it: success, not applied."""
        if rec is not None and rec.stored_at > score.timestamp:
            return Stale.ignore
        return None

    def value_refusal(self, score: IncomingScore, li: LineItemRecord) -> Response | None:
        """AGS §3.4: scoreMaximum MUST accompany scoreGiven; scoreGiven ≥ 0."""
        if score.score_given is not None:
            if score.score_maximum is None and self.policy.default_maximum is None:
                return self.bad_score("scoreMaximum is required when scoreGiven is present")
            if score.score_given < 0:
                return self.bad_score("scoreGiven must be greater than or equal to 0")
            if score.score_maximum is not None and score.score_maximum <= 0:
                return self.bad_score("scoreMaximum must be greater than 0")
        return None

    def inactive_refusal(self, li: LineItemRecord) -> Response | None:
        """Refusal for an item the platform will not grade now (none in the spec)."""
        return None

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        """Success: the spec prescribes no status; 204 (any 2xx is success)."""
        return empty_response(204)

    # ---------------- load ----------------
    def throttled(self) -> Response:
        """RFC 6585 429 with Retry-After."""
        return json_response({"error": "rate_limited"}, 429, headers={"Retry-After": "1"})

    def decorate(self, response: Response) -> Response:
        """Headers added to every answered service call (Canvas rate-limit headers)."""
        return response
