"""The reel tables: projects, reels (shot list, cast, dialogue) and reel jobs with per-shot
state.

They live in the registry's database beside the studio's accounts and jobs, under their own
metadata and Alembic version table (``studio_reels_alembic_version``), so that neither the
consent registry's nor the accounts' migrations change.

A reel job is one reel in one language (unique together): rendering it again after a change
(a character's new dub, a restart after a crash) updates the same rows, and each shot keeps
the key of the inputs its render used (:attr:`ReelShotRow.input_key`), so only shots whose
inputs changed are rendered again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consent.store import UTCDateTime


class ReelsBase(DeclarativeBase):
    pass


class ReelProjectRow(ReelsBase):
    """A production (its id is the grants' ``project_id``)."""

    __tablename__ = "studio_reel_projects"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelRow(ReelsBase):
    """A long video and its shots (``pipelines.reel.ShotList`` as JSON, see
    :mod:`studio.reels.store`)."""

    __tablename__ = "studio_reels"

    reel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("studio_reel_projects.project_id"), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    shots_from: Mapped[str] = mapped_column(String(16))  # edl | otio | detect
    shot_list: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelCastRow(ReelsBase):
    """A character of the reel played by an enrolled performer."""

    __tablename__ = "studio_reel_cast"

    reel_id: Mapped[str] = mapped_column(String(64), ForeignKey("studio_reels.reel_id"),
                                         primary_key=True)
    character: Mapped[str] = mapped_column(String(64), primary_key=True)
    performer_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelDialogueRow(ReelsBase):
    """One character's dialogue in one language: a stem (audio as long as the reel) or the
    timed script file whose lines name them."""

    __tablename__ = "studio_reel_dialogue"

    reel_id: Mapped[str] = mapped_column(String(64), ForeignKey("studio_reels.reel_id"),
                                         primary_key=True)
    language: Mapped[str] = mapped_column(String(35), primary_key=True)
    character: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # stem | script
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelJobRow(ReelsBase):
    """The reel in one language: its release settings, status and deliverables."""

    __tablename__ = "studio_reel_jobs"
    __table_args__ = (UniqueConstraint("reel_id", "language"),)

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reel_id: Mapped[str] = mapped_column(String(64), ForeignKey("studio_reels.reel_id"),
                                         index=True)
    language: Mapped[str] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed | interrupted
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    deliverables: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelShotRow(ReelsBase):
    """One shot of a reel job: pending | rendering | rendered | copied | refused | failed.

    ``input_key`` is the SHA-256 of everything the shot's render depends on (the shot's
    frames, the characters speaking, their performers and dub, the release); ``outcome``
    the render's published output and the decision it was made under."""

    __tablename__ = "studio_reel_shots"

    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("studio_reel_jobs.job_id"),
                                        primary_key=True)
    shot: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    input_key: Mapped[str] = mapped_column(String(64), default="")
    characters: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReelReviewRow(ReelsBase):
    """A reviewer's decision on one shot of a reel job: ``approved`` or ``rejected``, with a
    note. Rows are only ever added (the review's history); the newest one about the shot's
    *current* render (``output_sha256``) stands, so a shot rendered again is reviewed anew."""

    __tablename__ = "studio_reel_reviews"

    review_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("studio_reel_jobs.job_id"),
                                        index=True)
    shot: Mapped[int] = mapped_column(Integer)
    output_sha256: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected
    note: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
