"""Paging styles of the profiles: Canvas page/per_page with a full Link set, Moodle limit/from with
typographic-quote rels, and the spec's plain `rel="next"`. Links are absolute, built from the URL the
client called (so they carry the host it used and every filter it sent)."""
from __future__ import annotations

from typing import Sequence, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.datastructures import URL, QueryParams

T = TypeVar("T")


def _int(value: str | None, default: int | None) -> int | None:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def canvas_page(url: URL, rows: Sequence[T], *, default: int, maximum: int,
                loop: bool = False) -> tuple[Sequence[T], str]:
    """Canvas `Api.paginate`: `page`, `per_page` (`limit` maps to per_page), rels current/next/prev/first/last."""
    q = QueryParams(url.query)
    per_page = _int(q.get("per_page"), None) or _int(q.get("limit"), None) or default
    per_page = max(1, min(per_page, maximum))
    page = max(1, _int(q.get("page"), 1) or 1)
    last = max(1, -(-len(rows) // per_page))
    chunk = rows[(page - 1) * per_page: page * per_page]

    # What `url.remove_query_params("limit").include_query_params(page=p, per_page=per_page)` gives (the
    # other parameters in order, then page and per_page), built from one parse: four links per page made
    # this the emulator's largest cost per request (issue 13: its CPU delays every answer).
    parts = urlsplit(str(url))
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("limit", "page", "per_page")]

    def link(p: int) -> str:
        return urlunsplit(parts._replace(query=urlencode([*kept, ("page", str(p)), ("per_page", str(per_page))])))

    rels = [(link(page), "current")]
    if loop:
        rels.append((str(url), "next"))              # fault: next points back at this very page
    elif page < last:
        rels.append((link(page + 1), "next"))
    if page > 1:
        rels.append((link(page - 1), "prev"))
    rels += [(link(1), "first"), (link(last), "last")]
    return chunk, ",".join(f'<{u}>; rel="{r}"' for u, r in rels)


def moodle_page(url: URL, rows: Sequence[T], *, loop: bool = False) -> tuple[Sequence[T], str | None]:
    """Moodle `limit`/`from`: paging only when limit > 0; rels in U+201C/U+201D quotes incl. `canonical`
    (lineitems.php@2c709bbb, results.php@cf29c007; lti-platform-behavior.md §2.3)."""
    q = QueryParams(url.query)
    limit = _int(q.get("limit"), 0) or 0
    if limit <= 0:
        return rows, None
    start = max(0, _int(q.get("from"), 0) or 0)
    chunk = rows[start: start + limit]

    def link(frm: int) -> str:
        return str(url.include_query_params(limit=limit, **{"from": frm}))

    last_from = max(0, ((len(rows) - 1) // limit) * limit)
    parts = [f"<{link(0)}>; rel=“first”", f"<{link(start)}>; rel=“canonical”"]
    if loop:
        parts.append(f"<{url}>; rel=“next”")
    elif start + limit < len(rows):
        parts.append(f"<{link(start + limit)}>; rel=“next”")
    parts.append(f"<{link(last_from)}>; rel=“last”")
    return chunk, ", ".join(parts)


def next_only_page(url: URL, rows: Sequence[T], *, default: int, maximum: int,
                   loop: bool = False) -> tuple[Sequence[T], str | None]:
    """Spec paging (AGS §3.2, NRPS): `limit` is a hint capped at `maximum`; `Link: <…>; rel="next"` while more follow."""
    q = QueryParams(url.query)
    limit = max(1, min(_int(q.get("limit"), default) or default, maximum))
    page = max(1, _int(q.get("page"), 1) or 1)
    chunk = rows[(page - 1) * limit: page * limit]
    if loop:
        return chunk, f'<{url}>; rel="next"'
    if page * limit < len(rows):
        return chunk, f'<{url.include_query_params(page=page + 1, limit=limit)}>; rel="next"'
    return chunk, None


def header_value(text: str) -> str:
    """Make a header value with non-Latin-1 text (Moodle's curly quotes) go out as raw UTF-8 bytes,
    the way PHP sends it; Starlette encodes header strings as Latin-1."""
    return text.encode("utf-8").decode("latin-1")
