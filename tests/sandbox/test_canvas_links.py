"""The Canvas profile's Link header, built from one parse (issue 13: the emulator's largest cost per
request), is the one Starlette's URL operations give: other parameters in order, then page and per_page."""
from __future__ import annotations

import random

from starlette.datastructures import URL, QueryParams

from sandbox_lms.paging import _int, canvas_page


def _starlette_links(url: URL, rows: list, default: int, maximum: int) -> str:
    q = QueryParams(url.query)
    per_page = max(1, min(_int(q.get("per_page"), None) or _int(q.get("limit"), None) or default, maximum))
    page = max(1, _int(q.get("page"), 1) or 1)
    last = max(1, -(-len(rows) // per_page))

    def link(p: int) -> str:
        return str(url.remove_query_params("limit").include_query_params(page=p, per_page=per_page))

    rels = [(link(page), "current")]
    if page < last:
        rels.append((link(page + 1), "next"))
    if page > 1:
        rels.append((link(page - 1), "prev"))
    rels += [(link(1), "first"), (link(last), "last")]
    return ",".join(f'<{u}>; rel="{r}"' for u, r in rels)


def test_links_match_starlettes_url_operations():
    rng = random.Random(1)
    keys = ["limit", "page", "per_page", "user_id", "x", "a b", "é", ""]
    values = ["1", "2", "50", "", "a+b", "%2F", "é", "x y", "3", "-1", "zz"]
    for i in range(3000):
        query = "&".join(f"{rng.choice(keys)}={rng.choice(values)}" for _ in range(rng.randint(0, 5)))
        url = URL(f"http://127.0.0.1:{rng.randint(1, 65000)}/api/lti/courses/{i}/line_items/{i}/results"
                  + (f"?{query}" if query or rng.random() < 0.5 else ""))
        rows = list(range(rng.randint(0, 300)))
        _, header = canvas_page(url, rows, default=10, maximum=50)
        assert header == _starlette_links(url, rows, 10, 50), str(url)
