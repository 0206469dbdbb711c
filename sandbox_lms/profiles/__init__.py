"""Vendor profiles: one module per platform; `get_profile(name)` looks one up once per request."""
from __future__ import annotations

from sandbox_lms.profiles.base import Profile
from sandbox_lms.profiles.blackboard import BlackboardProfile
from sandbox_lms.profiles.canvas import CanvasProfile
from sandbox_lms.profiles.d2l import D2lProfile
from sandbox_lms.profiles.moodle import MoodleProfile
from sandbox_lms.profiles.spec import SpecProfile

PROFILES: dict[str, Profile] = {p.name: p for p in (CanvasProfile(), MoodleProfile(), D2lProfile(),
                                                      BlackboardProfile(), SpecProfile())}


def get_profile(name: str) -> Profile:
    """The profile object for `name` (canvas | moodle | d2l | blackboard | spec)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown sandbox profile {name!r}; known: {', '.join(PROFILES)}") from None
