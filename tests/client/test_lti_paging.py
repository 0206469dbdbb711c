"""Paging (every Link style platforms use), page sizes, filters, NRPS container, loops and safety."""
from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import ROLE_LEARNER, ErrorKind, LtiError, PagingLoopError, UnsafeUrlError
from lti_client.links import next_link, parse_link_header

pytestmark = pytest.mark.anyio

CANVAS_LI = "/api/lti/courses/7/line_items"
CANVAS_LI_URL = f"https://{HOST}{CANVAS_LI}"


def _items(*ids: int, base: str = CANVAS_LI_URL) -> list[dict]:
    return [{"id": f"{base}/{i}", "label": f"Item {i}", "scoreMaximum": 10, "resourceLinkId": f"rl{i}"}
            for i in ids]


def _query(request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode())


# ---- the parser itself -------------------------------------------------------------------------
@pytest.mark.parametrize("header, expected", [
    ('<https://h/x?page=2>; rel="next"', "https://h/x?page=2"),
    ("<https://h/x?page=2>; rel=next", "https://h/x?page=2"),                       # unquoted
    ('<https://h/x?page=2>; rel="prev next"', "https://h/x?page=2"),                # several rel values
    ('<https://h/x?p=1>; rel="current",<https://h/x?p=2>; rel="next",<https://h/x?p=1>; rel="first"',
     "https://h/x?p=2"),                                                              # Canvas style, no spaces
    ("<https://h/x?from=0>; rel=“first”, <https://h/x?from=5>; rel=“next”", "https://h/x?from=5"),  # Moodle
    ('</api/x?page=3>; rel="NEXT"', "https://h/api/x?page=3"),                     # relative, upper case
    ("<?page=4>; rel=next", "https://h/api/x?page=4"),                              # query-only relative
    ('<https://h/x?a=1,2>; title="a, b"; rel="next"', "https://h/x?a=1,2"),       # commas inside <> and quotes
    ('<https://h/x?p=1>; rel="prev"', None),
])
def test_next_link_is_found_in_every_header_style(header, expected):
    assert next_link([header], "https://h/api/x?page=2") == expected


def test_parse_link_header_keeps_every_link_and_its_params():
    links = parse_link_header('<a>; rel="first", <b>; rel=“next”; title="x", <c>; rel=last')
    assert [(t, p["rel"]) for t, p in links] == [("a", "first"), ("b", "next"), ("c", "last")]
    assert links[1][1]["title"] == "x"


# ---- through the client ------------------------------------------------------------------------
async def test_canvas_link_pages_are_followed_with_one_token_and_one_request_per_page(make_reg, make_client):
    lms = FakeLms("canvas")
    page = {1: _items(1, 2), 2: _items(3, 4), 3: _items(5)}

    def handler(req):
        n = int(_query(req).get("page", ["1"])[0])
        links = [f'<{CANVAS_LI_URL}?page={n}&per_page=2>; rel="current"',
                 f'<{CANVAS_LI_URL}?page=1&per_page=2>; rel="first"']
        if n < 3:
            links.append(f'<{CANVAS_LI_URL}?page={n + 1}&per_page=2>; rel="next"')
        return json_response(page[n], headers={"Link": ",".join(links)},
                             content_type="application/vnd.ims.lis.v2.lineitemcontainer+json")
    lms.route("GET", CANVAS_LI, handler)
    async with make_client(make_reg("canvas"), lms) as client:
        items = await client.list_line_items(CANVAS_LI_URL)
    assert [li.id.rsplit("/", 1)[1] for li in items] == ["1", "2", "3", "4", "5"]
    assert client.stats.requests == {"token": 1, "line_items": 3}
    first = lms.calls(CANVAS_LI)[0]
    assert first.headers["accept"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert _query(first)["limit"] == ["100"]                       # Canvas maps limit → per_page


async def test_relative_links_and_several_link_headers_are_followed(make_reg, make_client):
    lms = FakeLms("generic")
    path = "/lti/contexts/c1/lineitems"

    def handler(req):
        n = int(_query(req).get("p", ["1"])[0])
        headers = [("Link", f"<{path}?p=1>; rel=first")]         # a separate header line per link
        if n == 1:
            headers.append(("Link", "<?p=2>; rel=next"))            # relative to the request URL
        elif n == 2:
            headers.append(("Link", f'<{path}?p=3>; rel="prev next"'))
        return httpx.Response(200, json=_items(n, base=f"https://{HOST}{path}"), headers=headers)
    lms.route("GET", path, handler)
    async with make_client(make_reg("generic"), lms) as client:
        items = await client.list_line_items(f"https://{HOST}{path}")
    assert len(items) == 3 and client.stats.requests["line_items"] == 3


async def test_moodle_curly_quote_link_header_is_followed_with_type_id_kept(make_reg, make_client):
    lms = FakeLms("moodle")
    path = "/mod/lti/services.php/2/lineitems"
    base = f"https://{HOST}{path}"

    def handler(req):
        q = _query(req)
        assert q["type_id"] == ["3"]
        offset = int(q.get("from", ["0"])[0])
        limit = int(q["limit"][0])
        data = list(range(1, 6))[offset:offset + limit]
        link = (f"<{base}?type_id=3&limit={limit}&from=0>; rel=“first”, "
                f"<{base}?type_id=3&limit={limit}&from={offset}>; rel=“canonical”")
        if offset + limit < 5:
            link += f", <{base}?type_id=3&limit={limit}&from={offset + limit}>; rel=“next”"
        # PHP writes the header as UTF-8 bytes; a latin-1 header elsewhere must not garble it.
        return httpx.Response(200, json=_items(*data, base=base),
                              headers=[(b"Link", link.encode("utf-8")), (b"X-Note", "caf\xe9".encode("latin-1"))])
    lms.route("GET", path, handler)
    async with make_client(make_reg("moodle", page_size=2), lms) as client:
        items = await client.list_line_items(f"{base}?type_id=3")
    assert len(items) == 5
    assert [_query(r)["from"][0] if "from" in _query(r) else "0" for r in lms.calls(path)] == ["0", "2", "4"]


async def test_moodle_sends_no_limit_by_default_and_filters_by_lti_link_id(make_reg, make_client):
    lms = FakeLms("moodle")
    path = "/mod/lti/services.php/2/lineitems"
    # An older Moodle ignores resource_link_id and returns every line item (§2.3).
    lms.route("GET", path, json_response(_items(1, 2, 3, base=f"https://{HOST}{path}")))
    async with make_client(make_reg("moodle"), lms) as client:
        items = await client.list_line_items(f"https://{HOST}{path}?type_id=3", resource_link_id="rl2")
    q = _query(lms.calls(path)[0])
    assert q["lti_link_id"] == ["rl2"] and q["type_id"] == ["3"] and "limit" not in q
    assert [li.resource_link_id for li in items] == ["rl2"]


@pytest.mark.parametrize("vendor, path, expected", [
    ("canvas", "/api/lti/courses/7/names_and_roles", "50"),
    ("d2l", "/d2l/api/lti/nrps/2p0/deployment/d/orgunit/7/memberships", "50"),
    ("moodle", "/mod/lti/services.php/CourseSection/7/bindings/3/memberships", None),
])
async def test_nrps_page_size_per_vendor(make_reg, make_client, vendor, path, expected):
    lms = FakeLms(vendor)
    lms.route("GET", path, json_response({"id": "x", "members": []}))
    async with make_client(make_reg(vendor), lms) as client:
        assert await client.list_members(f"https://{HOST}{path}") == []
    assert _query(lms.calls(path)[0]).get("limit", [None])[0] == expected


async def test_d2l_line_items_ask_for_200_and_registration_page_size_overrides(make_reg, make_client):
    path = "/d2l/api/lti/ags/2p0/deployment/d/orgunit/7/lineitems"
    for reg, expected in ((make_reg("d2l"), "200"), (make_reg("d2l", page_size=25), "25")):
        lms = FakeLms("d2l")
        lms.route("GET", path, json_response([]))
        async with make_client(reg, lms) as client:
            await client.list_line_items(f"https://{HOST}{path}")
        assert _query(lms.calls(path)[0])["limit"] == [expected]


async def test_nrps_members_follow_paging_with_full_uri_roles_and_default_status(make_reg, make_client):
    lms = FakeLms("canvas")
    path = "/api/lti/courses/7/names_and_roles"
    url = f"https://{HOST}{path}"
    page1 = {"id": url, "context": {"id": "7"}, "members": [
        {"user_id": "u1", "roles": ["Learner"], "name": "Ann", "email": "ann@example.edu"},
        {"user_id": "u2", "roles": [ROLE_LEARNER], "status": "Inactive"}]}
    page2 = {"id": url, "members": [{"user_id": "t1", "roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]}]}
    lms.route("GET", path, json_response(page1, headers={"Link": f'<{url}?page=2>; rel="next"'}),
              json_response(page2))
    async with make_client(make_reg("canvas"), lms) as client:
        members = await client.list_members(url)
    assert [m.user_id for m in members] == ["u1", "u2", "t1"]
    assert members[0].roles == (ROLE_LEARNER,) and members[0].status == "Active" and members[0].is_learner
    assert members[1].status == "Inactive" and not members[1].is_active
    assert not members[2].is_learner and members[0].email == "ann@example.edu"
    assert lms.calls(path)[0].headers["accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


async def test_repeated_next_url_raises_paging_loop_and_never_spins(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", CANVAS_LI, lambda req: json_response(
        _items(1), headers={"Link": f'<{CANVAS_LI_URL}?page=2>; rel="next"'}))   # page 2 says next = page 2
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(PagingLoopError) as info:
            await client.list_line_items(CANVAS_LI_URL)
    assert info.value.kind is ErrorKind.paging_loop
    assert len(lms.calls(CANVAS_LI)) == 2


async def test_link_header_to_another_host_is_refused_before_any_request(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", CANVAS_LI, json_response(_items(1), headers={"Link": '<https://evil.example.com/steal?page=2>; rel="next"'}))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(UnsafeUrlError) as info:
            await client.list_line_items(CANVAS_LI_URL)
    assert info.value.kind is ErrorKind.unsafe_url and "evil.example.com" in (info.value.url or "")
    assert all(r.url.host == HOST for r in lms.requests)


@pytest.mark.parametrize("url", [
    "https://other.example.org/api/lti/courses/7/line_items",      # host not allowed
    f"http://{HOST}/api/lti/courses/7/line_items",                  # plain http to a non-loopback host
])
async def test_config_url_outside_the_allow_list_is_refused_without_a_token_request(make_reg, make_client, url):
    lms = FakeLms("canvas")
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(UnsafeUrlError):
            await client.list_line_items(url)
        with pytest.raises(UnsafeUrlError):
            await client.list_members(url)
    assert lms.requests == [] and client.stats.total == 0


async def test_token_url_outside_the_allow_list_is_refused(make_reg, make_client):
    lms = FakeLms("canvas")
    reg = make_reg("canvas", token_url="https://sso.elsewhere.example/login/oauth2/token")
    async with make_client(reg, lms) as client:
        with pytest.raises(UnsafeUrlError):
            await client.read_grant()
    assert lms.requests == []


async def test_blackboard_results_are_filtered_client_side_keeping_comment(make_reg, make_client):
    lms = FakeLms("blackboard")
    item = f"https://{HOST}/learn/api/v1/lti/courses/c1/lineItems/li1"
    path = "/learn/api/v1/lti/courses/c1/lineItems/li1/results"
    lms.route("GET", path, json_response([
        {"id": f"{item}/results/1", "userId": "u1", "resultScore": 5, "resultMaximum": 10, "comment": "good"},
        {"id": f"{item}/results/2", "userId": "u2", "resultScore": 7, "resultMaximum": 10}]))
    async with make_client(make_reg("blackboard"), lms) as client:
        results = await client.list_results(item, user_id="u1")
    assert [(r.user_id, r.comment) for r in results] == [("u1", "good")]
    assert "user_id" not in _query(lms.calls(path)[0])


async def test_canvas_results_use_the_server_side_user_filter(make_reg, make_client):
    lms = FakeLms("canvas")
    item = f"{CANVAS_LI_URL}/1"
    lms.route("GET", f"{CANVAS_LI}/1/results", json_response(
        [{"id": f"{item}/results/9", "scoreOf": item, "userId": "u1", "resultScore": 0, "resultMaximum": 10}]))
    async with make_client(make_reg("canvas"), lms) as client:
        results = await client.list_results(item, user_id="u1")
    req = lms.calls(f"{CANVAS_LI}/1/results")[0]
    assert _query(req)["user_id"] == ["u1"]
    assert req.headers["accept"] == "application/vnd.ims.lis.v2.resultcontainer+json"
    assert results[0].result_score == 0 and results[0].result_maximum == 10 and results[0].timestamp is None


async def test_wrong_container_shape_is_malformed(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", "/api/lti/courses/7/names_and_roles", lambda req: json_response([{"user_id": "u1"}]))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_members(f"https://{HOST}/api/lti/courses/7/names_and_roles")
    assert info.value.kind is ErrorKind.malformed


async def test_never_ending_distinct_next_urls_stop_at_the_page_cap(make_reg, make_client, monkeypatch):
    monkeypatch.setattr("lti_client.client.MAX_PAGES", 5)
    lms = FakeLms("canvas")
    lms.route("GET", CANVAS_LI, lambda req: json_response(
        [], headers={"Link": f'<{CANVAS_LI_URL}?page={int(_query(req).get("page", ["1"])[0]) + 1}>; rel="next"'}))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(PagingLoopError):
            await client.list_line_items(CANVAS_LI_URL)
    assert len(lms.calls(CANVAS_LI)) == 5
