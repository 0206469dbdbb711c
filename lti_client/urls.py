"""URL helpers: AGS service URLs from a line item id, query parameters, redaction for errors/logs."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
