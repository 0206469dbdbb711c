"""`spec`: the AGS 2.0 / NRPS 2.0 specifications taken strictly — the base profile's behaviour.

Choices the specs leave open, and what this profile does:
- Stale score (last timestamp on record later than the incoming one): AGS §4.1 says the platform
  "MUST NOT update" and "may just ignore" it → answered 204 like any success, not applied.
- Success status: none prescribed → 204 No Content.
- Timestamps must carry a zone (AGS §4.7) → zone-less timestamps are refused with 400.
- Scores and line item POSTs need their media types (AGS §3.2, §3.4) → 415 otherwise.
- NRPS lists current memberships with their status (Active and Inactive); Deleted members appear only
  in differences reports (NRPS spec), which this sandbox does not offer.
- Scope grants: the intersection of requested and allowed, echoed in `scope` (RFC 6749 §3.3).
- Throttling: 429 with Retry-After (RFC 6585).
"""
from __future__ import annotations

from sandbox_lms.profiles.base import Profile


class SpecProfile(Profile):
    """The specifications, strictly (all behaviour inherited from the base contract)."""

    name = "spec"
