"""URL shapes of the sandbox LMS, per vendor profile — the one place that knows them.

One server hosts several registrations; every route of a registration lives under `/{reg.name}`.
The shapes copy the real platforms' (lti-platform-behavior.md §1.3, §2.2–2.5) so a client that works
against the sandbox meets the same query strings and path layouts it meets in production:
Moodle's `?type_id=` is part of every id (§2.3), D2L's token audience is a fixed URL (§1.3).
Builders here are used by the server (ids in bodies, Link headers) and by the world exporter.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from sandbox_lms.state import Registration

# D2L: the assertion's `aud` is this fixed "Brightspace OAuth2 Audience", not the token URL (§1.3).
D2L_AUDIENCE = "https://api.brightspace.com/auth/token"

# Path templates below the registration prefix; `{ctx}` and `{item}` are filled in (ctx url-quoted).
TOKEN_PATHS: dict[str, str] = {
    "canvas": "/login/oauth2/token",                      # Canvas oauth_endpoints.md
    "moodle": "/mod/lti/token.php",                       # Moodle mod/lti/token.php
    "d2l": "/core/connect/token",                         # auth.brightspace.com/core/connect/token
    "blackboard": "/api/v1/gateway/oauth2/jwttoken",      # developer.blackboard.com gateway
    "spec": "/token",
}
LINEITEMS_PATHS: dict[str, str] = {
    "canvas": "/api/lti/courses/{ctx}/line_items",
    "moodle": "/mod/lti/services.php/{ctx}/lineitems",
    # D2L's real shape: /d2l/api/lti/ags/2p0/deployment/<deployment id>/orgunit/<org unit>/lineitems
    "d2l": "/d2l/api/lti/ags/2p0/deployment/{dep}/orgunit/{ctx}/lineitems",
    "blackboard": "/learn/api/v1/lti/courses/{ctx}/lineItems",
    "spec": "/lti/contexts/{ctx}/lineitems",
}
# Item path relative to the container path; Moodle adds a trailing `/lineitem` segment (§2.3).
ITEM_SUFFIX: dict[str, str] = {
    "canvas": "/{item}", "moodle": "/{item}/lineitem", "d2l": "/{item}",
    "blackboard": "/{item}", "spec": "/{item}",
}
MEMBERSHIPS_PATHS: dict[str, str] = {
    "canvas": "/api/lti/courses/{ctx}/names_and_roles",                         # §5.2
    "moodle": "/mod/lti/services.php/CourseSection/{ctx}/bindings/{type_id}/memberships",  # §5.3
    "d2l": "/d2l/api/lti/nrps/2p0/deployment/{dep}/orgunit/{ctx}/memberships",
    "blackboard": "/learn/api/v1/lti/courses/{ctx}/memberships",
    "spec": "/lti/contexts/{ctx}/memberships",
}
PROFILES = tuple(TOKEN_PATHS)


def _prefix(base_url: str, reg: Registration) -> str:
    return f"{base_url.rstrip('/')}/{reg.name}"


def _fill(template: str, reg: Registration, context_id: str = "", item: int | str = "") -> str:
    return template.format(ctx=quote(context_id, safe=""), item=item,
                           dep=quote(reg.deployment_id, safe=""), type_id=reg.type_id)


def _moodle_query(reg: Registration) -> str:
    # Moodle: `?type_id=<tool type>` is part of every service URL and id (§2.3).
    return f"?type_id={reg.type_id}" if reg.profile == "moodle" else ""


def issuer(base_url: str, reg: Registration) -> str:
    """The platform issuer of `reg` (as configured; independent of the host serving it)."""
    return reg.issuer


def token_url(base_url: str, reg: Registration) -> str:
    """The token endpoint of `reg` on the server at `base_url`."""
    return _prefix(base_url, reg) + TOKEN_PATHS[reg.profile]


def token_audience(base_url: str, reg: Registration) -> str | None:
    """The `aud` the client assertion must carry; None means "the token URL" (all but D2L)."""
    return D2L_AUDIENCE if reg.profile == "d2l" else None


def lineitems_url(base_url: str, reg: Registration, context_id: str) -> str:
    """The AGS line items container URL of one course (Moodle: with `?type_id=`)."""
    return _prefix(base_url, reg) + _fill(LINEITEMS_PATHS[reg.profile], reg, context_id) + _moodle_query(reg)


def line_item_url(base_url: str, reg: Registration, context_id: str, item_id: int) -> str:
    """A line item's id URL (Canvas `…/line_items/{id}`; Moodle `…/lineitems/{id}/lineitem?type_id=n`)."""
    path = _fill(LINEITEMS_PATHS[reg.profile] + ITEM_SUFFIX[reg.profile], reg, context_id, item_id)
    return _prefix(base_url, reg) + path + _moodle_query(reg)


def service_url(item_url: str, suffix: str, **query: str) -> str:
    """`/results` or `/scores` of an item URL: appended to the *path*, query kept (Moodle, §2.3)."""
    parts = urlsplit(item_url)
    q = parts.query
    extra = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    q = "&".join(p for p in (q, extra) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path + suffix, q, ""))


def results_url(base_url: str, reg: Registration, context_id: str, item_id: int) -> str:
    """The results container of a line item."""
    return service_url(line_item_url(base_url, reg, context_id, item_id), "/results")


def scores_url(base_url: str, reg: Registration, context_id: str, item_id: int) -> str:
    """The scores endpoint of a line item."""
    return service_url(line_item_url(base_url, reg, context_id, item_id), "/scores")


def memberships_url(base_url: str, reg: Registration, context_id: str) -> str:
    """The NRPS context memberships URL of one course."""
    return _prefix(base_url, reg) + _fill(MEMBERSHIPS_PATHS[reg.profile], reg, context_id)


@dataclass(frozen=True)
class ItemUrls:
    """A line item's id and the ids of its results, built once per request (cheap per row)."""
    item: str
    _result_prefix: str

    def result(self, user_id: str) -> str:
        """The id of `user_id`'s result on this line item."""
        return self._result_prefix + quote(user_id, safe="")


def item_urls(base_url: str, reg: Registration, context_id: str, item_id: int) -> ItemUrls:
    """Id URLs of one line item and its results: Moodle `…/lineitem/results?type_id=n&user_id=u` (§3.3);
    others `…/results/{user}` (Canvas results_controller shape)."""
    item = line_item_url(base_url, reg, context_id, item_id)
    if reg.profile == "moodle":
        path, _, query = item.partition("?")
        return ItemUrls(item, f"{path}/results?{query}&user_id=")
    return ItemUrls(item, item + "/results/")


def result_id_url(base_url: str, reg: Registration, context_id: str, item_id: int, user_id: str) -> str:
    """A result's id (see `item_urls`)."""
    return item_urls(base_url, reg, context_id, item_id).result(user_id)
