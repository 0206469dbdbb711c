"""A tolerant RFC 8288 `Link` header parser, and next-page discovery.

Tolerant because real platforms are not strict: Moodle writes `rel=“next”` with typographic quotes
(lti-platform-behavior.md §2.3, §7 #19), rel may be unquoted or carry several values, one header may
hold several links, and URLs may be relative (resolved against the URL of the response).
"""
from __future__ import annotations

from urllib.parse import urljoin

# ASCII, typographic double and single quotes all delimit a parameter value.
_OPEN_QUOTES = {'"': '"', "“": "”", "”": "”", "'": "'", "‘": "’"}


def _split_params(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for chunk in _split_outside_quotes(rest, ";"):
        name, sep, value = chunk.partition("=")
        name = name.strip().lower().rstrip("*")
        if not name:
            continue
        value = value.strip()
        if value and value[0] in _OPEN_QUOTES:
            closing = _OPEN_QUOTES[value[0]]
            value = value[1:]
            if value.endswith(closing) or (value and value[-1] in _OPEN_QUOTES.values()):
                value = value[:-1]
        params.setdefault(name, value if sep else "")
    return params


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, buf, closing = [], [], None
    for ch in text:
        if closing is not None:
            buf.append(ch)
            if ch == closing:
                closing = None
        elif ch in _OPEN_QUOTES:
            closing = _OPEN_QUOTES[ch]
            buf.append(ch)
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """All links of one header value as (target URI, params with lower-case names), in order."""
    links: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start + 1)
        if end < 0:
            break
        target = value[start + 1:end].strip()
        # The params run to the next link: the next '<' that follows a ',' outside quotes.
        j, closing = end + 1, None
        while j < n:
            ch = value[j]
            if closing is not None:
                if ch == closing:
                    closing = None
            elif ch in _OPEN_QUOTES:
                closing = _OPEN_QUOTES[ch]
            elif ch == "," and value.find("<", j) >= 0 and value[j + 1:value.find("<", j)].strip() == "":
                break
            j += 1
        links.append((target, _split_params(value[end + 1:j])))
        i = j + 1
    return links


def next_link(header_values: list[str], base_url: str) -> str | None:
    """The absolute `rel=next` URL among all `Link` header values, resolved against `base_url`."""
    for value in header_values:
        if "next" not in value.lower():
            continue                         # no rel=next here (most pages): skip the parsing
        for target, params in parse_link_header(value):
            rels = params.get("rel", "").lower().split()
            if "next" in rels:
                return urljoin(base_url, target)
    return None
