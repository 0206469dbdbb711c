"""A platform registration: everything the client needs to talk to one LMS as one tool."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Vendor(str, Enum):
    canvas = "canvas"
    moodle = "moodle"
    blackboard = "blackboard"
    d2l = "d2l"
    generic = "generic"


class PlatformRegistration(BaseModel):
    """One `[[platforms]]` entry of gradesync.toml. The private key is a *file path*; key material
    is read only when a token is signed and never kept on this object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    vendor: Vendor
    issuer: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    token_url: str = Field(min_length=1)
    audience: str | None = None
    private_key_file: Path
    key_id: str = Field(min_length=1)
    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    max_concurrency: int | None = Field(default=None, ge=1, le=64)
    page_size: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts_without_ports(cls, v):
        # Ports are ignored: "lms.example.edu:8443" and "lms.example.edu" allow the same host.
        if isinstance(v, str):
            v = [v]
        return tuple(h.strip().lower().split(":")[0] for h in v if h and h.strip())

    @field_validator("private_key_file")
    @classmethod
    def _key_file_exists(cls, v: Path) -> Path:
        if not v.is_file():
            raise ValueError(f"key file not found: {v}")
        return v

    @property
    def key_in_flight_limit(self) -> int:
        """Requests in flight this developer key may have, across every process: `max_concurrency`, else
        the vendor's default from the facts file (lti_client/vendors/*.py)."""
        from lti_client.vendors import profile_for

        return self.max_concurrency or profile_for(self.vendor).default_concurrency

    @property
    def token_audience(self) -> str:
        """`aud` of the client assertion: the configured audience (D2L's fixed one) or the token URL."""
        return self.audience or self.token_url

    def host_allowed(self, url: str) -> bool:
        """True when `url` is https (or http on loopback) and its host is in allowed_hosts."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https":
            pass
        elif parts.scheme == "http" and (host in ("localhost", "::1") or host.startswith("127.")):
            pass
        else:
            return False
        return host in self.allowed_hosts
