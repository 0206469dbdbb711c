"""gradesync.toml: database, Slack, audit options and platform registrations.

Path: --config > $GRADESYNC_CONFIG > ./gradesync.toml. Env GRADESYNC_DATABASE_URL and
GRADESYNC_SLACK_WEBHOOK_URL override the file. Relative paths in the file (key files, a SQLite database,
report_dir) resolve against the file's folder, so a command works from any working directory. Problems
raise one ConfigError that lists every problem (`.problems`), each naming its field, so the CLI can
print them all at once without a traceback.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gradesync.findings import CATEGORIES
from lti_client.registration import PlatformRegistration, Vendor

DEFAULT_DATABASE_URL = "sqlite:///gradesync.db"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits gradesync.toml. `problems` holds each
    problem's own line when there are several (str() joins them)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


SUPPORTED_DATABASES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = DEFAULT_DATABASE_URL

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        # Only the drivers gradesync ships (SQLite; PostgreSQL via psycopg 3): any other URL would fail later
        # with a driver import error that says nothing about the configuration.
        scheme = v.split("://", 1)[0].lower() if "://" in v else ""
        if scheme not in SUPPORTED_DATABASES:
            shown = scheme or v[:40]
            raise ValueError(f"unsupported database {shown!r}: gradesync runs on SQLite (sqlite:///PATH) or "
                             "PostgreSQL (postgresql+psycopg://USER@HOST/DB)"
                             + (" — GRADESYNC_DATABASE_URL is set and overrides the file"
                                if os.environ.get("GRADESYNC_DATABASE_URL") else ""))
        return v


class SlackRoute(BaseModel):
    """Send messages matching platform / category / severity to one webhook (URL or env var name)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    platforms: list[str] = Field(default_factory=list)     # empty = any platform
    categories: list[str] = Field(default_factory=list)    # empty = any category
    severities: list[str] = Field(default_factory=list)    # "incident" | "digest"; empty = both
    webhook_url: str | None = None
    webhook_env: str | None = None

    @model_validator(mode="after")
    def _one_target(self):
        if bool(self.webhook_url) == bool(self.webhook_env):
            raise ValueError("give exactly one of webhook_url or webhook_env")
        unknown = sorted(set(self.categories) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r}")
        return self

    def resolved_url(self) -> str | None:
        return self.webhook_url or os.environ.get(self.webhook_env or "") or None


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook_url: str | None = None                          # the default route
    routes: list[SlackRoute] = Field(default_factory=list)
    incident_reminder_days: int = Field(default=3, ge=1)
    report_base_url: str | None = None                      # where reports are published, if anywhere


# The nightly schedule has one home, prefect.yaml (deployment nightly-audit); `gradesync serve` reads it
# from there. These [audit] keys used to duplicate it and are refused with that pointer.
MOVED_TO_PREFECT_YAML = {"schedule_cron", "timezone"}


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report_dir: Path = Path("reports")
    resync_after_audit: bool = True                         # nightly: run pending resyncs after the audit
    resync_max_attempts: int = Field(default=5, ge=1)
    # The night in batches (issue 12): a batch's courses bound a worker's memory; see README "One night".
    batch_courses: int = Field(default=200, ge=1)
    # On a work pool, batches of one platform running at once (they take turns on the developer key).
    batches_per_platform: int = Field(default=2, ge=1, le=8)
    # Share of each developer key's in-flight limit that nightly work never takes (gradesync/budget.py).
    on_demand_reserved_share: float = Field(default=0.05, ge=0, lt=1)
    # Reading less (gradesync/audit/night_plan.py): an ended course gets a final audit this long after
    # its end date, then weekly until clean; an unchanged course is read once per `rolling_days`.
    ended_grace_days: int = Field(default=14, ge=0)
    rolling_days: int = Field(default=7, ge=1)
    # LMS snapshot tables (lms_line_item / lms_result / lms_member) are kept for this many audit runs.
    snapshot_runs_kept: int = Field(default=30, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    platforms: list[PlatformRegistration] = Field(default_factory=list)
    source_path: Path | None = None

    @model_validator(mode="after")
    def _unique_platform_names(self):
        seen: set[str] = set()
        for p in self.platforms:
            if p.name in seen:
                raise ValueError(f"duplicate platform name {p.name!r}")
            seen.add(p.name)
        return self

    def platform(self, name: str) -> PlatformRegistration:
        for p in self.platforms:
            if p.name == name:
                return p
        raise ConfigError(f"unknown platform {name!r} (configured: {', '.join(self.platform_names) or 'none'})")

    @property
    def platform_names(self) -> list[str]:
        return [p.name for p in self.platforms]


def config_path(explicit: str | Path | None = None) -> Path:
    """--config > $GRADESYNC_CONFIG > ./gradesync.toml"""
    return Path(explicit or os.environ.get("GRADESYNC_CONFIG") or "gradesync.toml")


def _field_name(loc: tuple, data: dict) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int) and parts and parts[-1] == "platforms":
            name = None
            try:
                name = data["platforms"][item].get("name")
            except (KeyError, IndexError, AttributeError, TypeError):
                pass
            parts[-1] = f"platforms[{item}]" + (f" ({name})" if name else "")
        elif isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _message(err: dict, data: dict) -> str:
    field = _field_name(tuple(err["loc"]), data)
    if err["type"] == "enum" and field.endswith("vendor"):
        allowed = " | ".join(v.value for v in Vendor)
        return f"{field}: unknown vendor {err.get('input')!r} (expected {allowed})"
    if err["type"] == "missing":
        return f"{field}: required field is missing"
    if err["type"] == "extra_forbidden" and field.startswith("audit.") and field[6:] in MOVED_TO_PREFECT_YAML:
        return (f"{field}: the nightly schedule lives in prefect.yaml only (deployment nightly-audit, "
                "schedules: cron and timezone); remove it here so the two cannot disagree")
    if err["type"] == "extra_forbidden":
        return f"{field}: unknown field"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{field}: {msg}"


def load_settings(path: str | Path | None = None, *, required: bool = False) -> Settings:
    """Read gradesync.toml (if present) and apply env overrides. Relative key paths resolve against
    the config file's folder."""
    p = config_path(path)
    data: dict = {}
    if p.exists():
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: malformed TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
        _resolve_relative_paths(data, p.resolve().parent)
    elif required or path is not None or os.environ.get("GRADESYNC_CONFIG"):
        raise ConfigError(f"config file not found: {p}")

    if os.environ.get("GRADESYNC_DATABASE_URL"):
        data.setdefault("database", {})["url"] = os.environ["GRADESYNC_DATABASE_URL"]
    if os.environ.get("GRADESYNC_SLACK_WEBHOOK_URL"):
        data.setdefault("slack", {})["webhook_url"] = os.environ["GRADESYNC_SLACK_WEBHOOK_URL"]
    problems: list[str] = []
    settings = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        problems += [_message(err, data) for err in e.errors()]
    problems += host_problems(data)
    if problems:
        lines = [f"{p}: {x}" for x in dict.fromkeys(problems)]
        raise ConfigError("\n".join(lines), lines)
    settings.source_path = p if p.exists() else None
    return settings


def _resolve_relative_paths(data: dict, base: Path) -> None:
    """Key files, a file-based SQLite URL and report_dir, when relative, are relative to the config file."""
    for plat in data.get("platforms", []) or []:
        if isinstance(plat, dict) and isinstance(plat.get("private_key_file"), str):
            kf = Path(plat["private_key_file"]).expanduser()
            plat["private_key_file"] = str(kf if kf.is_absolute() else base / kf)
    db = data.get("database")
    if isinstance(db, dict) and isinstance(db.get("url"), str):
        db["url"] = _absolute_sqlite_url(db["url"], base)
    audit = data.get("audit")
    if isinstance(audit, dict) and isinstance(audit.get("report_dir"), str):
        rd = Path(audit["report_dir"]).expanduser()
        audit["report_dir"] = str(rd if rd.is_absolute() else base / rd)


def _absolute_sqlite_url(url: str, base: Path) -> str:
    """sqlite:///relative.db → sqlite:////abs/base/relative.db; memory and absolute URLs unchanged."""
    head, sep, rest = url.partition(":///")
    if not sep or not head.startswith("sqlite") or not rest or rest.startswith("/") or rest.startswith(":memory:") \
            or rest.startswith("file:"):
        return url
    path, q, query = rest.partition("?")
    return f"{head}:///{(base / Path(path).expanduser()).as_posix()}{q}{query}"


def host_problems(data: dict) -> list[str]:
    """A token_url whose host is not on the platform's allowed_hosts (or not https / loopback http):
    gradesync would refuse to call it, so say so now rather than at the first audit."""
    out = []
    for i, plat in enumerate(data.get("platforms", []) or []):
        if not isinstance(plat, dict) or not isinstance(plat.get("token_url"), str):
            continue
        hosts = plat.get("allowed_hosts")
        hosts = [hosts] if isinstance(hosts, str) else hosts
        if not isinstance(hosts, list) or not hosts:
            continue
        allowed = {str(h).strip().lower().split(":")[0] for h in hosts}
        label = f"platforms[{i}]" + (f" ({plat['name']})" if plat.get("name") else "")
        problem = url_problem(plat["token_url"], allowed)
        if problem:
            out.append(f"{label}.token_url: {problem}")
    return out


def url_problem(url: str, allowed_hosts: set[str] | tuple[str, ...]) -> str | None:
    """Why gradesync would refuse to call `url` (the client's rule: https, or http on loopback, and the
    host on allowed_hosts), or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        return f"{url!r} is neither https nor http on loopback"
    if host not in allowed_hosts:
        return (f"host {host!r} is not in allowed_hosts ({', '.join(sorted(allowed_hosts))}): gradesync "
                "would refuse to send a token request there")
    return None
