"""gradesync.toml: database, Slack, audit options and platform registrations.

Path: --config > $GRADESYNC_CONFIG > ./gradesync.toml. Env GRADESYNC_DATABASE_URL and
GRADESYNC_SLACK_WEBHOOK_URL override the file. Any problem raises ConfigError with one message that
names the offending field, so the CLI can print it without a traceback.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gradesync.findings import CATEGORIES
from lti_client.registration import PlatformRegistration, Vendor

DEFAULT_DATABASE_URL = "sqlite:///gradesync.db"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits gradesync.toml."""


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = DEFAULT_DATABASE_URL


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


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    report_dir: Path = Path("reports")
    resync_after_audit: bool = True                         # nightly: run pending resyncs after the audit
    resync_max_attempts: int = Field(default=5, ge=1)


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
        base = p.resolve().parent
        for plat in data.get("platforms", []) or []:
            if isinstance(plat, dict) and isinstance(plat.get("private_key_file"), str):
                kf = Path(plat["private_key_file"]).expanduser()
                plat["private_key_file"] = str(kf if kf.is_absolute() else base / kf)
    elif required or path is not None or os.environ.get("GRADESYNC_CONFIG"):
        raise ConfigError(f"config file not found: {p}")

    if os.environ.get("GRADESYNC_DATABASE_URL"):
        data.setdefault("database", {})["url"] = os.environ["GRADESYNC_DATABASE_URL"]
    if os.environ.get("GRADESYNC_SLACK_WEBHOOK_URL"):
        data.setdefault("slack", {})["webhook_url"] = os.environ["GRADESYNC_SLACK_WEBHOOK_URL"]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        more = f" (and {e.error_count() - 1} more problem(s))" if e.error_count() > 1 else ""
        raise ConfigError(f"{p}: {_message(first, data)}{more}") from None
    settings.source_path = p if p.exists() else None
    return settings
