"""Vendor profiles: one module per platform, looked up once per client (`profile_for`)."""
from __future__ import annotations

from lti_client.registration import Vendor
from lti_client.types import CredentialFault, Endpoint, ErrorKind, TokenRefusal
from lti_client.vendors import blackboard, canvas, d2l, generic, moodle
from lti_client.vendors.base import ErrorRule, VendorProfile, classify_with, token_refusal

PROFILES: dict[Vendor, VendorProfile] = {
    Vendor.canvas: canvas.PROFILE,
    Vendor.moodle: moodle.PROFILE,
    Vendor.blackboard: blackboard.PROFILE,
    Vendor.d2l: d2l.PROFILE,
    Vendor.generic: generic.PROFILE,
}


def profile_for(vendor: Vendor | str) -> VendorProfile:
    """The profile of `vendor` (a Vendor or its value, e.g. "canvas")."""
    return PROFILES[Vendor(vendor)]


def classify(vendor: Vendor | str, status: int, body: str | bytes | None,
             endpoint: Endpoint | str, reason: str = "") -> ErrorKind:
    """What a non-2xx answer of `vendor` on `endpoint` means, from that vendor's one error table.
    `body` may be a logged response that holds the reason phrase instead of the body (Moodle, §10)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    return classify_with(profile_for(vendor), status, text, Endpoint(endpoint), reason)


def classify_token_refusal(vendor: Vendor | str, error_type: str | None,
                           message: str) -> tuple[TokenRefusal, CredentialFault | None]:
    """What a 4xx token answer of `vendor` means (scope refused vs credentials rejected, and which)."""
    return token_refusal(profile_for(vendor), error_type, message)


__all__ = ["PROFILES", "ErrorRule", "VendorProfile", "classify", "classify_token_refusal", "profile_for"]
