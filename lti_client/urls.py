"""URL helpers: AGS service URLs from a line item id, query parameters, redaction for errors/logs."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

# Query parameter names that could carry a secret; their values never reach an error or a log line.
_SECRET_PARAMS = frozenset({"access_token", "token", "client_assertion", "assertion", "code",
                            "client_secret", "key", "signature", "sig", "jwt", "id_token"})


def service_url(line_item_id: str, service: str) -> str:
    """`<line item>/results` or `/scores`, appended to the *path* with the query kept.

    Moodle ids carry `?type_id=…` (lti-platform-behavior.md §2.3, §7 #18): appending to the end of the
    string would produce `…lineitem?type_id=3/scores`, which Moodle answers with 404/400.
    """
    parts = urlsplit(line_item_id)
    path = parts.path.rstrip("/") + "/" + service
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def with_params(url: str, params: dict[str, str | int | None]) -> str:
    """`url` with `params` added to its query (existing parameters such as Moodle's type_id kept;
    a parameter given here replaces one of the same name). None values are skipped."""
    extra = {k: str(v) for k, v in params.items() if v is not None}
    if not extra:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    query.extend(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def redact_url(url: str | None) -> str | None:
    """`url` without user info and without the values of secret-looking query parameters."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, "[redacted]" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs])
    else:
        query = ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# ---- httpx.URL without httpx's parser, for URLs already in its canonical form (issue 13) ------------------
# httpx parses and re-validates every URL (~40 µs: per-character checks, IPv4 validation, percent-quoting),
# 6 % of the client's CPU per request. A URL that is already what httpx's parser would produce (lower-case
# http(s) scheme and host, no user info, a non-default port, a path and query of characters httpx leaves
# as they are, no `%`, no `.`/`..` segments, no fragment) is built from its parts directly; any other goes
# through httpx. `tests/client/test_lti_urls_fast.py` holds both to the same results.
_CANONICAL = re.compile(
    r"(https?)://((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]\\^|]*)"
    r"(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]\\^`{|}]*))?")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_DEFAULT_PORT = {"http": 80, "https": 443}


def _canonical_parts(url: str) -> tuple[str, str, int | None, str, str | None] | None:
    m = _CANONICAL.fullmatch(url)
    if m is None:
        return None
    scheme, host, port, path, query = m.groups()
    if host[-1].isdigit() and (not _IPV4.fullmatch(host) or max(map(int, host.split("."))) > 255):
        return None                    # IPv4-looking: httpx validates it (or it is not one)
    if "/." in path:
        return None                    # maybe a "." or ".." segment: httpx normalises those
    number = int(port) if port is not None else None
    if number is not None and (number > 65535 or number == _DEFAULT_PORT[scheme]):
        return None
    return scheme, host, number, path, query


def _fast_url_works() -> bool:
    # The shortcut uses httpx's internal parse result: checked once against httpx's own parser, so an
    # httpx that changed it only costs the shortcut, never a wrong URL.
    sample = "https://lms.example.edu:8443/api/lti/courses/1/line_items/2/results?per_page=50&page=2"
    try:
        return str(_build(sample, _canonical_parts(sample))) == str(httpx.URL(sample)) and \
            _build(sample, _canonical_parts(sample)) == httpx.URL(sample)
    except Exception:                  # noqa: BLE001 — any failure: httpx's parser for every URL
        return False


def _build(url: str, parts: tuple[str, str, int | None, str, str | None] | None) -> httpx.URL:
    if parts is None:
        return httpx.URL(url)
    from httpx._urlparse import ParseResult
    built = httpx.URL.__new__(httpx.URL)
    scheme, host, port, path, query = parts
    built._uri_reference = ParseResult(scheme, "", host, port, path, query, None)
    return built


def request_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, without httpx's parser when `url` is already canonical (see above)."""
    if _FAST:
        parts = _canonical_parts(url)
        if parts is not None:
            return _build(url, parts)
    return httpx.URL(url)


_FAST = _fast_url_works()
