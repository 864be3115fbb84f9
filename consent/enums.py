"""The closed vocabularies of the signed documents (techniques, channels, signatory roles, …).

Plain enums with no dependency: the ``studio`` command line uses them as option types, which
typer resolves when it builds ``--help``, so they must not pull in pydantic or the language
and territory tables (:mod:`consent.fields`, which re-exports them).
"""

from __future__ import annotations

from enum import StrEnum


class Technique(StrEnum):
    LIP_SYNC = "lip_sync"
    FACE_REENACTMENT = "face_reenactment"
    VOICE_SYNTHESIS = "voice_synthesis"
    PERFORMANCE_DRIVING = "performance_driving"


class SignatoryRole(StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"
    ESTATE = "estate"
    UNION_DESIGNEE = "union_designee"


class Channel(StrEnum):
    THEATRICAL = "theatrical"
    BROADCAST = "broadcast"
    STREAMING = "streaming"
    HOME_VIDEO = "home_video"
    FESTIVAL = "festival"
    PROMOTIONAL = "promotional"
    INTERNAL_REVIEW = "internal_review"


class Alteration(StrEnum):
    """How much of the face a render may change; full_face includes the mouth region."""

    MOUTH_REGION = "mouth_region"
    FULL_FACE = "full_face"


class ApprovalRequirement(StrEnum):
    """Whether each output made under a grant waits for the performer's signed approval
    (grant schema version 2; version 1 grants are ``not_required``)."""

    REQUIRED = "required"
    NOT_REQUIRED = "not_required"


class ApprovalDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class AfterDeathPolicy(StrEnum):
    NONE = "none"
    UNTIL_DATE = "until_date"
    ESTATE_CONSENT_REQUIRED = "estate_consent_required"
