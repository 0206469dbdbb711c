"""Who receives what: resolve [[slack.routes]] and the default route into plain Route records and match
findings and incidents against their filters. Pure functions, no I/O beyond reading env vars once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gradesync.findings import Finding
from gradesync.settings import SlackSettings

DEFAULT_ROUTE = "default"
SEVERITIES = ("digest", "incident")      # a reminder is routed like the incident it recalls


@dataclass(frozen=True)
class Route:
    """One recipient: a name, its filters, and the webhook (None when it could not be resolved)."""
    name: str
    url: str | None
    platforms: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    problem: str | None = None            # why url is None, worded without secrets
    is_default: bool = False

    def wants(self, severity: str) -> bool:
        return not self.severities or severity in self.severities

    def matches_platform(self, platform: str) -> bool:
        return not self.platforms or platform in self.platforms

    def matches_categories(self, categories: frozenset[str] | set[str]) -> bool:
        return not self.categories or bool(self.categories & set(categories))

    def matches_finding(self, f: Finding) -> bool:
        return self.matches_platform(f.platform) and (not self.categories or f.category in self.categories)

    @property
    def target(self) -> str:
        """What may be logged about the destination: the webhook's host only (the URL is a secret)."""
        return webhook_host(self.url) if self.url else ""


@dataclass(frozen=True)
class RoutingTable:
    routes: list[Route] = field(default_factory=list)

    @property
    def console_only(self) -> bool:
        """No webhook configured at all: the digest goes to the console and is saved with the run."""
        return not self.routes


def webhook_host(url: str) -> str:
    """host[:port] of a webhook URL; the path of a Slack webhook is its credential and is never shown."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def redact(text: str, url: str | None) -> str:
    """Replace any occurrence of the webhook URL (or its path) in an error text by its host."""
    if not url:
        return text
    path = urlsplit(url).path
    text = text.replace(url, webhook_host(url))
    return text.replace(path, "/…") if len(path) > 1 else text


def build_routes(slack: SlackSettings, env: dict[str, str] | None = None) -> RoutingTable:
    """Configured routes in file order, then the default route (slack.webhook_url) which receives
    everything — it is the catch-all channel, so filters on other routes never hide a finding from it."""
    env = os.environ if env is None else env
    routes: list[Route] = []
    for i, r in enumerate(slack.routes):
        name = r.name or f"route{i + 1}"
        url, problem = r.webhook_url, None
        if r.webhook_env:
            url = env.get(r.webhook_env) or None
            # The env var's *name* is configuration, not a secret: safe to show.
            problem = None if url else f"environment variable {r.webhook_env} is not set"
        routes.append(Route(name=name, url=url, platforms=frozenset(r.platforms),
                            categories=frozenset(r.categories), severities=frozenset(r.severities),
                            problem=problem))
    if slack.webhook_url:
        routes.append(Route(name=DEFAULT_ROUTE, url=slack.webhook_url, is_default=True))
    names = [r.name for r in routes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        # The alert log is keyed by route name: two routes with one name would dedupe each other away.
        routes = [Route(**{**r.__dict__, "name": f"{r.name}#{i + 1}"}) if r.name in dupes else r
                  for i, r in enumerate(routes)]
    return RoutingTable(routes)


def findings_for(route: Route, findings: list[Finding]) -> list[Finding]:
    """The findings a route's digest shows: those matching its platform and category filters."""
    return [f for f in findings if route.matches_finding(f)]
