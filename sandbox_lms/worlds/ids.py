"""Deterministic identifiers, names and e-mail addresses, shaped like each platform's own.

Everything is drawn from the world's seeded `random.Random`, so the same seed gives the same ids.
"""
from __future__ import annotations

import random
import uuid

FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kira", "Luca",
    "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Ximena",
    "Yusuf", "Zoe", "Amara", "Bruno", "Carmen", "Deepa", "Elif", "Felix", "Gustavo", "Hana", "Ivan", "Jade",
)
LAST_NAMES = (
    "Garcia", "Nguyen", "Smith", "Okafor", "Kowalski", "Haddad", "Tanaka", "Silva", "Muller", "Ivanova",
    "Johnson", "Rossi", "Chen", "Patel", "Dubois", "Andersen", "Lopez", "Kim", "Mensah", "Novak",
    "Hernandez", "Osei", "Fischer", "Santos", "Yilmaz", "Park", "Costa", "Brennan", "Ahmed", "Larsen",
)
COURSE_TOPICS = (
    "Security+ Foundations", "Network+ Essentials", "A+ Core 1", "A+ Core 2", "Linux+ Administration",
    "Cloud+ Operations", "CySA+ Analyst", "PenTest+ Practice", "Data+ Analytics", "Project+ Methods",
    "Server+ Hardware", "CASP+ Architecture",
)
ACTIVITY_KINDS = ("Lesson quiz", "Lab", "Practice exam", "Assessment", "Simulation")


def rand_uuid(rng: random.Random) -> str:
    """A version-4-shaped UUID drawn from `rng`."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rand_hex(rng: random.Random, n: int) -> str:
    """`n` lowercase hex digits from `rng`."""
    return f"{rng.getrandbits(4 * n):0{n}x}"


class IdMaker:
    """Per-registration id shapes: Canvas ids are opaque hashes/UUIDs, Moodle ids small integers,
    Blackboard `_n_1` primary keys, D2L org unit numbers (lti-platform-behavior.md §2, §5)."""

    def __init__(self, profile: str, rng: random.Random, offset: int) -> None:
        self.profile = profile
        self.rng = rng
        self._n = 100 + offset * 1000        # keeps numeric ids distinct between registrations

    def _next(self) -> int:
        self._n += 1 + self.rng.randrange(3)
        return self._n

    def context_id(self) -> str:
        if self.profile == "canvas":
            return rand_hex(self.rng, 40)        # Canvas context_id: an opaque SHA-1-like hash
        if self.profile == "blackboard":
            return f"_{self._next()}_1"
        return str(self._next())                 # Moodle course id, D2L org unit id, spec

    def resource_link_id(self) -> str:
        if self.profile == "moodle":
            return str(self._next())             # Moodle: the lti instance id (§2.3)
        return rand_uuid(self.rng)

    def user_id(self) -> str:
        if self.profile == "moodle":
            return str(self._next())             # Moodle `sub` = the Moodle user id (§3.3)
        if self.profile == "d2l":
            return f"{rand_uuid(self.rng)}_{self._next()}"
        if self.profile == "blackboard":
            return rand_hex(self.rng, 32)
        return rand_uuid(self.rng)               # Canvas lti_id


def client_id(profile: str, rng: random.Random) -> str:
    """A client id shaped like the platform's (Canvas developer key ids are large integers)."""
    if profile == "canvas":
        return str(10000000000000 + rng.randrange(1, 99999))
    if profile == "moodle":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(rng.choice(alphabet) for _ in range(15))
    return rand_uuid(rng)
