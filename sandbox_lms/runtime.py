"""Run-time bookkeeping of a sandbox server, beside the LMS data: tokens, counters, the score log,
requests in flight, seeded fault dice and the platform clock (which tests may move forward)."""
from __future__ import annotations

import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sandbox_lms.latency import LatencyTimer
from sandbox_lms.state import Registration


@dataclass(frozen=True)
class IssuedToken:
    registration: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class AcceptedScore:
    """One score POST the platform accepted (2xx), as received."""
    registration: str
    context_id: str
    item_id: int
    user_id: str
    score_given: float | None
    score_maximum: float | None
    timestamp: datetime
    activity_progress: str
    grading_progress: str
    received_at: datetime
    status: int
    applied: bool = True               # False when the platform answered 2xx but ignored it (stale, spec §4.1)


@dataclass(frozen=True)
class ReceivedScore:
    """One score POST body as received (JSON object), whatever the answer: tests read what was sent."""
    registration: str
    context_id: str
    item_id: int
    body: dict


@dataclass
class Counters:
    """Requests per (registration, endpoint kind) and score POSTs per (registration, context, item, user);
    `peak_in_flight`: the most requests of a registration being handled at once (tokens included; a
    throttled answer is not counted) — what a client's or a shared budget's cap held to.

    Kinds: token, line_items, line_item, line_items_create, results, scores, memberships, throttled,
    late (a read whose own handling took longer than the injected latency: the emulator was the limit).
    """
    requests: Counter = field(default_factory=Counter)
    score_posts: Counter = field(default_factory=Counter)
    # Most requests of one registration (one developer key) ever in flight at once: a shared budget
    # across workers is kept when this never exceeds the key's limit.
    peak_in_flight: Counter = field(default_factory=Counter)

    def in_flight_now(self, registration: str, n: int) -> None:
        """Record that `n` requests of `registration` are in flight (keeps the peak)."""
        if n > self.peak_in_flight[registration]:
            self.peak_in_flight[registration] = n

    def get(self, registration: str, kind: str) -> int:
        """Requests of `kind` received for `registration` (0 if none)."""
        return self.requests[(registration, kind)]

    def total(self, registration: str | None = None) -> int:
        """All counted requests, optionally of one registration."""
        return sum(n for (reg, _), n in self.requests.items() if registration in (None, reg))

    def scores_for(self, registration: str, context_id: str, item_id: int, user_id: str) -> int:
        """Score POSTs received for one (line item, user) cell, accepted or not."""
        return self.score_posts[(registration, context_id, item_id, user_id)]

    def snapshot(self) -> dict:
        """A JSON-able copy: {"requests": {"reg/kind": n}, "score_posts": {"reg/ctx/item/user": n},
        "peak_in_flight": {"reg": n}}."""
        return {
            "requests": {f"{r}/{k}": n for (r, k), n in sorted(self.requests.items())},
            "score_posts": {"/".join(map(str, key)): n for key, n in sorted(self.score_posts.items())},
            "peak_in_flight": dict(sorted(self.peak_in_flight.items())),
        }

    def reset(self) -> None:
        """Forget all counts."""
        self.requests.clear()
        self.score_posts.clear()
        self.peak_in_flight.clear()


class Runtime:
    """Mutable server-side bookkeeping shared by the app, the control object and the admin routes."""

    def __init__(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}
        self.counters = Counters()
        self.score_log: list[AcceptedScore] = []
        self.score_bodies: list[ReceivedScore] = []   # every score POST body, accepted or not
        self.in_flight: Counter = Counter()
        self.clock_offset = timedelta(0)
        self.latency = LatencyTimer()                  # injected read latency, aimed at its deadline
        self._dice: dict[str, random.Random] = {}

    def now(self) -> datetime:
        """The platform's clock: real UTC time plus any offset a test added."""
        return datetime.now(timezone.utc) + self.clock_offset

    def dice(self, reg: Registration) -> random.Random:
        """The registration's seeded random source for fault injection (reproducible per seed)."""
        rng = self._dice.get(reg.name)
        if rng is None:
            rng = self._dice[reg.name] = random.Random(f"{reg.name}:{reg.faults.seed}")
        return rng

    def reseed(self, reg: Registration) -> None:
        """Restart the registration's fault dice from its seed (after a fault change)."""
        self._dice.pop(reg.name, None)

    def issue_token(self, reg: Registration, scopes: frozenset[str]) -> tuple[str, IssuedToken]:
        """Create an opaque bearer token for `reg` with `scopes`, valid for the configured lifetime."""
        value = secrets.token_urlsafe(32)
        issued = IssuedToken(reg.name, scopes, self.now() + timedelta(seconds=reg.faults.token_lifetime_s))
        self.tokens[value] = issued
        return value, issued
