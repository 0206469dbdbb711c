"""A built world: the LMS state to serve, the tool's records to export, and the planted ground truth."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sandbox_lms import urls
from sandbox_lms.state import LmsState
from sandbox_lms.worlds.answers import Outcome, answer
from sandbox_lms.worlds.model import CATEGORIES, Passback, PlantedFinding, ToolRecords, iso, num

# design.md "Inputs" 2: the tool's CSV files and their exact columns, in order.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "courses": ("platform", "deployment_id", "context_id", "title", "lineitems_url", "memberships_url",
                "starts_at", "ends_at"),
    "accounts": ("account_id", "email", "name", "origin"),
    "identities": ("account_id", "platform", "lms_user_id"),
    "links": ("platform", "context_id", "resource_link_id", "activity_id", "title", "graded"),
    "completions": ("account_id", "activity_id", "score_given", "score_maximum", "completed_at", "platform",
                    "context_id", "resource_link_id"),
    "passbacks": ("account_id", "platform", "context_id", "resource_link_id", "line_item_id", "lms_user_id",
                  "score_given", "score_maximum", "timestamp", "status_code", "response"),
}
PROBE_USER = "sandbox-probe-user"


@dataclass
class World:
    """Everything one seed produced. Key material (`private_keys`, the registrations' public keys) is
    generated at build time; every other record is a pure function of (seed, size, options)."""
    seed: int
    size: str
    clean: bool
    state: LmsState
    private_keys: dict[str, bytes]
    records: ToolRecords
    ground_truth: list[PlantedFinding]
    expected_keys: frozenset[tuple[str, str, str, str]] = frozenset()
    gap_keys: frozenset[tuple[str, str, str, str]] = frozenset()
    unverified: frozenset[tuple[str, str]] = field(default_factory=frozenset)   # course-level planted

    # --- tool side --------------------------------------------------------------------------
    def tool_records(self, base_url: str) -> dict[str, list[dict[str, str]]]:
        """The rows of each CSV (name → rows of strings, columns as design.md), URLs for `base_url`."""
        regs = self.state.registrations
        r = self.records
        courses = [{
            "platform": c.platform, "deployment_id": c.deployment_id, "context_id": c.context_id,
            "title": c.title,
            "lineitems_url": urls.lineitems_url(base_url, regs[c.platform], c.context_id),
            "memberships_url": urls.memberships_url(base_url, regs[c.platform], c.context_id),
            "starts_at": iso(c.starts_at, c.utc_offset_h), "ends_at": iso(c.ends_at, c.utc_offset_h),
        } for c in r.courses]
        accounts = [{"account_id": a.account_id, "email": a.email, "name": a.name, "origin": a.origin}
                    for a in r.accounts]
        identities = [{"account_id": i.account_id, "platform": i.platform, "lms_user_id": i.lms_user_id}
                      for i in r.identities]
        links = [{"platform": lk.platform, "context_id": lk.context_id, "resource_link_id": lk.resource_link_id,
                  "activity_id": lk.activity_id, "title": lk.title, "graded": "true" if lk.graded else "false"}
                 for lk in r.links]
        completions = [{
            "account_id": c.account_id, "activity_id": c.activity_id, "score_given": num(c.score_given),
            "score_maximum": num(c.score_maximum), "completed_at": iso(c.completed_at),
            "platform": c.platform or "", "context_id": c.context_id or "", "resource_link_id": c.resource_link_id or "",
        } for c in [*r.completions.values(), *r.extra_completions]]
        log = sorted((p for cell in r.passbacks.values() for p in cell), key=lambda p: p.timestamp)
        passbacks = []
        item_urls: dict[tuple[str, str, int], str] = {}
        accepted: dict[tuple[str, str, int], tuple[int, str]] = {}
        for p in log:
            reg = regs[p.platform]
            cell = (p.platform, p.context_id, p.item_id)
            if cell not in item_urls:
                item_urls[cell] = urls.line_item_url(base_url, reg, p.context_id, p.item_id)
            if p.outcome is Outcome.timed_out:
                status, body = "", ""                  # no answer: the log keeps the row, empty status
            elif p.outcome is Outcome.accepted:
                # A success differs between users of one item only by the user id (Canvas resultUrl):
                # ask the profile once per item for a probe user and substitute (checked by a test).
                if cell not in accepted:
                    accepted[cell] = self._answer(base_url, p, PROBE_USER)
                status, body = accepted[cell]
                body = body.replace(PROBE_USER, quote(p.lms_user_id, safe=""))
            else:
                status, body = self._answer(base_url, p, p.lms_user_id)
            passbacks.append({
                "account_id": p.account_id, "platform": p.platform, "context_id": p.context_id,
                "resource_link_id": "" if p.no_link else p.resource_link_id, "line_item_id": item_urls[cell],
                "lms_user_id": p.lms_user_id,
                "score_given": num(p.score_given), "score_maximum": num(p.score_maximum),
                "timestamp": iso(p.timestamp, ms=True), "status_code": str(status), "response": body,
            })
        return {"courses": courses, "accounts": accounts, "identities": identities, "links": links,
                "completions": completions, "passbacks": passbacks}

    def _answer(self, base_url: str, p: Passback, user_id: str) -> tuple[int, str]:
        reg = self.state.registrations[p.platform]
        course = reg.courses[p.context_id]
        return answer(base_url, reg, course, course.line_item(p.item_id), user_id, p.outcome,
                      score_given=p.score_given, score_maximum=p.score_maximum, timestamp=p.timestamp,
                      stored_at=p.stored_at)

    def export(self, directory: str | Path, base_url: str) -> Path:
        """Write the CSVs, keys/<platform>.pem (0600) and a ready gradesync.toml into `directory`."""
        from sandbox_lms.worlds.export import export_world
        return export_world(self, Path(directory), base_url)

    # --- counts -----------------------------------------------------------------------------
    @property
    def expected_grades(self) -> int:
        """Expected grades (rows of completion_sync) in the courses that can be audited."""
        return sum(1 for k in self.expected_keys if (k[0], k[1]) not in self.unverified)

    def planted_counts(self) -> dict[str, int]:
        """Planted findings per category (every category present, zeros included)."""
        counts = Counter(f.category for f in self.ground_truth)
        return {c: counts.get(c, 0) for c in CATEGORIES}

    def summary(self) -> dict:
        """Sizes and counts of the world, for people and benchmarks."""
        regs = self.state.registrations.values()
        courses = [c for reg in regs for c in reg.courses.values()]
        items = [li for c in courses for li in c.line_items]
        audited_gaps = sum(1 for k in self.gap_keys if (k[0], k[1]) not in self.unverified)
        return {
            "seed": self.seed, "size": self.size, "clean": self.clean,
            "registrations": {r.name: r.profile for r in regs},
            "courses": len(courses), "members": sum(len(c.members) for c in courses),
            "line_items": len(items), "results": sum(len(li.results) for li in items),
            "accounts": len(self.records.accounts),
            "completions": len(self.records.completions) + len(self.records.extra_completions),
            "passbacks": sum(len(v) for v in self.records.passbacks.values()),
            "expected_grades": self.expected_grades, "expected_in_sync": self.expected_grades - audited_gaps,
            "planted": self.planted_counts(), "planted_total": len(self.ground_truth),
        }

    def fingerprint(self) -> str:
        """A digest of everything seed-determined (records, state without keys, ground truth)."""
        h = hashlib.sha256()
        for name, rows in self.tool_records("http://sandbox.invalid").items():
            h.update(name.encode())
            h.update(json.dumps(rows, sort_keys=True).encode())
        for reg in self.state.registrations.values():
            h.update(repr((reg.name, reg.profile, reg.client_id, reg.issuer, reg.key_id, sorted(reg.granted_scopes),
                           reg.type_id, reg.deployment_id, reg.next_line_item_id)).encode())
            for c in reg.courses.values():
                h.update(repr(c).encode())
        h.update(repr([(f.identity, f.account_id, f.note) for f in self.ground_truth]).encode())
        return h.hexdigest()
