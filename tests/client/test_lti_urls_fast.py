"""lti_client.urls.request_url: the same httpx.URL as httpx's own parser, with or without the shortcut
(issue 13: httpx's parser was 6 % of the client's CPU per request)."""
from __future__ import annotations

import random

import httpx
import pytest

from lti_client import urls
from lti_client.urls import request_url

SHAPES = [
    "https://canvas.example.edu/api/lti/courses/1/line_items/2/results?per_page=50&page=2",
    "http://127.0.0.1:45678/api/lti/courses/123/line_items/4567/results?limit=100",
    "https://moodle.example.org/mod/lti/services.php/2/lineitems/9/lineitem/results?type_id=3&limit=10&from=20",
    "https://d2l.example.com/d2l/api/lti/ags/2.0/deployment/x-y_z/orgunit/6606/lineitems/abc~1/results",
    "https://lms.example.edu:443/a/b",                 # default port: httpx drops it
    "http://lms.example.edu:80/a",
    "https://lms.example.edu:08443/a",                  # leading zero
    "https://lms.example.edu:99999/a",                  # no such port
    "https://LMS.Example.edu/a",                        # upper-case host
    "HTTPS://lms.example.edu/a",
    "https://lms.example.edu/a/./b/../c",               # dot segments
    "https://lms.example.edu/a/.hidden/b",
    "https://lms.example.edu/a%20b?q=%41",              # escapes
    "https://lms.example.edu/a b?q=x y",                # needs quoting
    "https://lms.example.edu/a?q=<x>#frag",
    "https://user:pw@lms.example.edu/a",
    "https://lms.example.edu/é?x=ü",
    "https://lms.example.edu",                          # no path
    "https://lms.example.edu/?",                        # empty query
    "https://lms.example.edu/a?b?c=`{}|^[]",
    "https://lms.example.edu/a[b]c|d^e\\f",
    "https://lms_1.example.edu/a",
    "https://lms1/a",
    "http://256.1.1.1/a",                               # not an IPv4 address
    "http://127.0.0.01/a",
    "http://1.2.3/a",
    "https://[::1]:8443/a",
    "https://xn--bcher-kva.example/a",
    "https://bücher.example/a",
    "https://-bad-.example/a",
]


def _same(url: str) -> None:
    try:
        expected = httpx.URL(url)
    except httpx.InvalidURL:
        with pytest.raises(httpx.InvalidURL):
            request_url(url)
        return
    got = request_url(url)
    assert got == expected and str(got) == str(expected)
    assert (got.scheme, got.raw_host, got.port, got.raw_path, got.query, got.fragment, got.userinfo) == \
        (expected.scheme, expected.raw_host, expected.port, expected.raw_path, expected.query,
         expected.fragment, expected.userinfo)
    request = httpx.Request("GET", got)
    assert request.url == expected and request.headers["host"] == httpx.Request("GET", url).headers["host"]


def test_the_shortcut_is_on_here():
    assert urls._FAST
    assert urls._canonical_parts(SHAPES[0]) is not None and urls._canonical_parts(SHAPES[1]) is not None


@pytest.mark.parametrize("url", SHAPES)
def test_every_shape_parses_as_httpx_parses_it(url):
    _same(url)


def test_random_urls_parse_as_httpx_parses_them():
    rng = random.Random(13)
    alphabet = [chr(i) for i in range(0x20, 0x7F)] + ["é", "%41", "%zz", "/./", "/../", ":443", ":80"]
    hosts = ["lms.example.edu", "127.0.0.1", "10.0.0.256", "a-b.c", "LMS.edu", "x_y.edu", "h"]
    shortcut = 0
    for _ in range(3000):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        url = f"{rng.choice(['http', 'https'])}://{rng.choice(hosts)}{rng.choice(['', ':8080', ':443', ':0'])}{path}"
        shortcut += urls._canonical_parts(url) is not None
        _same(url)
    assert shortcut > 100                              # the comparison covered the shortcut, not only httpx
