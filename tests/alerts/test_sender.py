"""The webhook sender over real HTTP: 429 honours Retry-After, 5xx backs off, failures come back as data."""
from __future__ import annotations

import logging
import socket

from gradesync.alerts.sender import SlackSender

PAYLOAD = {"text": "hello", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


def test_429_is_retried_after_retry_after_then_succeeds(slack):
    slack.script("a", (429, {"Retry-After": "1"}, "rate_limited"))
    result = SlackSender(backoff=0.01).send(slack.url("a"), PAYLOAD)
    posts = slack.posts_to("a")
    assert result.ok and result.attempts == 2 and [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 1.0                    # waited the Retry-After second
    assert posts[1].body == PAYLOAD


def test_5xx_backs_off_then_succeeds(slack):
    slack.script("b", (500, {}, "oops"), (502, {}, "bad gateway"))
    result = SlackSender(backoff=0.01).send(slack.url("b"), PAYLOAD)
    assert result.ok and result.attempts == 3 and [p.status for p in slack.posts_to("b")] == [500, 502, 200]


def test_permanent_failure_is_returned_without_raising_and_without_the_secret(slack, caplog):
    slack.script("c", *[(500, {}, "internal_error")] * 10)
    caplog.set_level(logging.DEBUG)
    result = SlackSender(backoff=0.01, max_retries=2).send(slack.url("c"), PAYLOAD)
    assert not result.ok and result.attempts == 3 and result.status_code == 500
    assert result.error == "HTTP 500: internal_error"
    assert len(slack.posts_to("c")) == 3
    assert "secret-token" not in caplog.text and "127.0.0.1" in caplog.text


def test_client_error_is_not_retried(slack):
    slack.script("d", (400, {}, "invalid_blocks"))
    result = SlackSender(backoff=0.01).send(slack.url("d"), PAYLOAD)
    assert (result.ok, result.attempts, result.error) == (False, 1, "HTTP 400: invalid_blocks")


def test_retry_after_longer_than_we_wait_is_a_failure_not_a_hang(slack):
    slack.script("e", (429, {"Retry-After": "3600"}, "rate_limited"))
    result = SlackSender(max_retry_after=5).send(slack.url("e"), PAYLOAD)
    assert not result.ok and result.status_code == 429 and len(slack.posts_to("e")) == 1


def test_connection_refused_is_retried_then_reported(caplog):
    with socket.socket() as s:                    # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T/B/refused-secret-token"
    result = SlackSender(backoff=0.01, max_retries=2).send(url, PAYLOAD)
    assert not result.ok and result.attempts == 3 and "Connection refused" in result.error
    assert "secret-token" not in result.error and "secret-token" not in caplog.text


def test_a_200_with_an_html_page_is_not_sent(slack):
    # A captive portal or an SSO login page in front of the webhook: HTTP 200, but Slack never saw it.
    slack.script("html", (200, {}, "<!DOCTYPE html><html><body><form>Sign in to continue</form></body></html>"))
    result = SlackSender(backoff=0.01).send(slack.url("html"), PAYLOAD)
    assert not result.ok and result.status_code == 200 and result.attempts == 1
    assert "HTML page" in result.error and "not delivered" in result.error
    assert SlackSender(backoff=0.01).send(slack.url("html"), PAYLOAD).ok       # Slack's own "ok" still counts
