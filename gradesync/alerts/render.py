"""Slack messages from digest views and incidents, built with slack_sdk's Block Kit models so that
Slack's limits (header ≤ 150 chars, section text ≤ 3000, ≤ 50 blocks) hold however many findings there are."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject

from gradesync.alerts.digest import CourseLine, DigestView, fallback_text

MAX_BLOCKS = 50                 # Slack: a message carries at most 50 blocks
SECTION_LIMIT = 3000            # Slack: section text ≤ 3000 characters
HEADER_LIMIT = 150              # Slack: header text ≤ 150 characters
CONTEXT_LIMIT = 2000            # kept under the 3000-char text object limit; slack_sdk does not check it
TEXT_LIMIT = 3000               # fallback text: Slack truncates beyond 40k, notifications far sooner
MAX_UNVERIFIED_NAMED = 10       # "could not audit" names at most this many courses


@dataclass(frozen=True)
class SlackMessage:
    """A message ready for a webhook: notification fallback text plus Block Kit blocks."""
    text: str
    blocks: tuple[Block, ...]

    def to_payload(self) -> dict[str, Any]:
        """JSON body for the webhook; slack_sdk validates each block's limits here (raises if broken)."""
        if len(self.blocks) > MAX_BLOCKS:
            raise ValueError(f"{len(self.blocks)} blocks exceed Slack's limit of {MAX_BLOCKS}")
        return {"text": self.text[:TEXT_LIMIT], "blocks": [b.to_dict() for b in self.blocks]}


def esc(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_lines(lines: list[str], limit: int = SECTION_LIMIT, *, total: int | None = None) -> str:
    """Join lines into at most `limit` characters, ending with "… and N more" when some do not fit.
    `total` counts items not even offered in `lines` (already cut by the caller)."""
    total = len(lines) if total is None else total
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        rest = total - i - 1
        tail = len(f"\n… and {rest} more") if rest else 0
        line = clip(line, limit - 40)
        if size + len(line) + 1 + tail > limit and out:
            break
        out.append(line)
        size += len(line) + 1
    missing = total - len(out)
    if missing:
        out.append(f"… and {missing} more")
    return "\n".join(out)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, CONTEXT_LIMIT))])


def course_name(platform: str, context_id: str, title: str | None) -> str:
    return f"{platform} / {title} ({context_id})" if title else f"{platform} / {context_id}"


def report_mrkdwn(report: str) -> str:
    if report.startswith(("http://", "https://")):
        return f"<{report}|Open the report>"
    return f"Report: `{esc(report)}`"


def _course_line(c: CourseLine) -> str:
    cats = ", ".join(f"{k} {n}" for k, n in c.by_category)
    new = f", {c.new} new" if c.new else ""
    return f"• {esc(course_name(c.platform, c.context_id, c.title))}: *{c.findings}*{new} ({cats})"


def unverified_line(v: DigestView, *, markdown: bool = True) -> str:
    """ONE line for every course that could not be audited — never per-learner noise for them."""
    n = len(v.unverified)
    named = [course_name(c.platform, c.context_id, c.title) + (f": {c.reason}" if c.reason else "")
             for c in v.unverified[:MAX_UNVERIFIED_NAMED]]
    more = f"; … and {n - len(named)} more" if n > len(named) else ""
    body = "; ".join(esc(x) if markdown else x for x in named) + more
    lead = f"*Could not audit: {n} course{'s' if n != 1 else ''}*" if markdown else \
        f"Could not audit: {n} course{'s' if n != 1 else ''}"
    return clip(f"{lead} ({body})", SECTION_LIMIT)


def digest_message(v: DigestView) -> SlackMessage:
    """The nightly digest for one recipient route."""
    scope = f" · {v.scope}" if v.scope else ""
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"gradesync audit run {v.run_id} ({v.kind}){scope}", HEADER_LIMIT)),
        section(f"*{v.total} findings* · *{v.new} new* · {v.still_open} still open · "
                f"{v.resolved} resolved since the last run"
                + (f"\n_Run state: {esc(v.state)}_" if v.state != "completed" else "")),
    ]
    if v.by_category:
        lines = [f"• `{c}` {n}" + (f" ({k} new)" if k else "") for c, n, k in v.by_category]
        blocks.append(section("*By category*\n" + fit_lines(lines, SECTION_LIMIT - 20)))
    if v.resolved_by_category:
        lines = [f"`{c}` {n}" for c, n in v.resolved_by_category]
        blocks.append(section(f"*Resolved since the last run: {v.resolved}*\n" + ", ".join(lines)))
    if v.approvals:
        blocks.append(section("*Manual grades superseded on approval*\n" + fit_lines(list(v.approvals), SECTION_LIMIT - 60)))
    if v.top_courses:
        lines = [_course_line(c) for c in v.top_courses]
        head = f"*Most affected courses* (of {v.courses_with_findings} with findings)\n"
        blocks.append(section(head + fit_lines(lines, SECTION_LIMIT - len(head),
                                               total=v.courses_with_findings)))
    if v.unverified:
        blocks.append(section(unverified_line(v)))
    if v.report:
        blocks += [DividerBlock(), context(report_mrkdwn(v.report))]
    return SlackMessage(text=fallback_text(v), blocks=tuple(blocks))


def digest_text(v: DigestView) -> str:
    """The same digest as plain text, for the console route (no webhook configured)."""
    out = [fallback_text(v), f"  {v.total} findings: {v.new} new, {v.still_open} still open, "
                             f"{v.resolved} resolved since the last run"]
    if v.state != "completed":
        out.append(f"  run state: {v.state}")
    if v.by_category:
        out.append("  by category:")
        out += [f"    {c:<24} {n:>6}" + (f"  ({k} new)" if k else "") for c, n, k in v.by_category]
    if v.resolved_by_category:
        out.append("  resolved: " + ", ".join(f"{c} {n}" for c, n in v.resolved_by_category))
    if v.approvals:
        out.append("  manual grades superseded on approval: " + "; ".join(v.approvals))
    if v.top_courses:
        out.append(f"  most affected courses (of {v.courses_with_findings} with findings):")
        for c in v.top_courses:
            cats = ", ".join(f"{k} {n}" for k, n in c.by_category)
            out.append(f"    {course_name(c.platform, c.context_id, c.title)}: {c.findings}"
                       + (f", {c.new} new" if c.new else "") + f" ({cats})")
    if v.unverified:
        out.append("  " + unverified_line(v, markdown=False))
    if v.report:
        out.append(f"  report: {v.report}")
    return "\n".join(out)
