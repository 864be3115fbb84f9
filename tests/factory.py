"""Builders for signed consent documents used across the test suite."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from consent.documents import Grant, SignedDocument, sign_draft
from consent.gate import AuthorizationRequest, IdentityMatch, Subject
from consent.keys import PrivateKey

#: The fixed "now" of most tests.
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

SOURCE_SHA = hashlib.sha256(b"source footage").hexdigest()
SCRIPT_SHA = hashlib.sha256(b"approved script").hexdigest()
EVIDENCE_SHA = hashlib.sha256(b"consent recording").hexdigest()


class Clock:
    """A settable clock for the registry."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def grant_draft(performer_id: str = "perf-a", grant_id: str = "grant-1",
                **overrides: Any) -> dict[str, Any]:
    """A complete grant draft (without type/schema_version) that the gate would accept."""
    base: dict[str, Any] = {
        "grant_id": grant_id,
        "performer": {"performer_id": performer_id, "legal_name": f"Performer {performer_id}"},
        "signatory": {"role": "self", "name": f"Performer {performer_id}"},
        "grantee": {"company": "Dub House Ltd", "projects": [
            {"project_id": "proj-1", "title": "The Film"}]},
        "representation": {"kind": "union_agreement", "reference": "SAG-AFTRA 2026 AI rider"},
        "scope": {
            "techniques": ["lip_sync", "face_reenactment"],
            "purpose": "Lip-sync the French and Spanish dubs of The Film.",
            "languages": ["fr", "es-ES"],
            "territories": ["FR", "ES", "CA"],
            "channels": ["theatrical", "streaming"],
            "source_media": "any",
            "max_alteration": "mouth_region",
            "ai_training": False,
        },
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "signed_at": "2025-12-15T10:00:00Z",
        "compensation_reference": "CONTRACT-42",
        "after_death": {"policy": "none"},
        "revocable": True,
        "evidence": {
            "consent_recording_sha256": EVIDENCE_SHA,
            "identity_template_sha256": [EVIDENCE_SHA],
            "text_shown_sha256": EVIDENCE_SHA,
        },
        "disclosure": {"credit_text": "Lip-sync by AI with consent",
                       "machine_readable_marking": True},
    }
    return deep_merge(base, overrides)


def signed_grant(key: PrivateKey, **kwargs: Any) -> SignedDocument[Grant]:
    return sign_draft(Grant, grant_draft(**kwargs), [key])


def request(performer_id: str = "perf-a", track_id: str | None = "t1",
            technique: str = "lip_sync", **overrides: Any) -> AuthorizationRequest:
    body: dict[str, Any] = {
        "operation": "lipsync", "project_id": "proj-1", "language": "fr-CA",
        "territory": "CA", "channel": "streaming", "alteration": "mouth_region",
        "operator": "Op One",
        "subjects": [{"performer_id": performer_id, "technique": technique,
                      "track_id": track_id}],
        "source_media_sha256": SOURCE_SHA,
    }
    body.update(overrides)
    return AuthorizationRequest.model_validate(body)


def match(track_id: str = "t1", performer_id: str | None = "perf-a",
          distance: float | None = 0.3, **kw: Any) -> IdentityMatch:
    return IdentityMatch(track_id=track_id, performer_id=performer_id, distance=distance,
                         threshold=kw.pop("threshold", 0.5), frames=kw.pop("frames", 50), **kw)


__all__ = ["Subject"]
