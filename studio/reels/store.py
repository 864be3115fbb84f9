"""Typed reads and writes of the reel tables (:mod:`studio.reels.models`).

The shot list is kept as JSON (``ShotList.to_json`` / ``from_json``), so a reel's shots are
exactly the ones it was imported with, whatever the detector or the edit list would say today.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select

from consent.store import Store
from pipelines.reel.shots import ShotList
from studio.errors import ReelNotFoundError

from .models import (
    ReelCastRow,
    ReelDialogueRow,
    ReelJobRow,
    ReelProjectRow,
    ReelRow,
    ReelShotRow,
)

MIGRATIONS = Path(__file__).with_name("migrations")


class ShotState(StrEnum):
    PENDING = "pending"
    RENDERING = "rendering"
    RENDERED = "rendered"
    COPIED = "copied"
    REFUSED = "refused"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Kept when the job runs again with the same inputs."""
        return self in (ShotState.RENDERED, ShotState.COPIED)


def migrate(engine: Engine) -> None:
    """Bring the reel tables to the newest revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "head")


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DialogueSource:
    """One character's dialogue in one language."""

    character: str
    kind: str  # stem | script
    path: Path
    sha256: str


@dataclass(frozen=True)
class Reel:
    reel_id: str
    project_id: str
    source: Path
    source_sha256: str
    shots_from: str
    shots: ShotList
    cast: dict[str, str]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"reel_id": self.reel_id, "project_id": self.project_id,
                "source": str(self.source), "source_sha256": self.source_sha256,
                "shots_from": self.shots_from, "shots": len(self.shots),
                "frames": self.shots.frame_count,
                "frame_rate": str(self.shots.frame_rate),
                "start_timecode": self.shots.start_timecode, "cast": dict(self.cast)}


@dataclass(frozen=True)
class ShotRecord:
    shot: int
    state: ShotState
    input_key: str = ""
    characters: tuple[str, ...] = ()
    reason: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"shot": self.shot, "state": self.state.value, "input_key": self.input_key,
                "characters": list(self.characters), "reason": self.reason,
                "outcome": self.outcome}


@dataclass(frozen=True)
class ReelJobRecord:
    job_id: str
    reel_id: str
    language: str
    status: str
    options: dict[str, Any]
    deliverables: dict[str, Any]
    error: str | None
    shots: tuple[ShotRecord, ...]
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in self.shots:
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        return {"job_id": self.job_id, "reel_id": self.reel_id, "language": self.language,
                "status": self.status, "options": self.options,
                "deliverables": self.deliverables, "error": self.error,
                "counts": counts, "shots": [s.to_json() for s in self.shots],
                "updated_at": self.updated_at.isoformat()}


def _shot(row: ReelShotRow) -> ShotRecord:
    return ShotRecord(row.shot, ShotState(row.state), row.input_key, tuple(row.characters),
                      row.reason, dict(row.outcome))


class ReelStore:
    """The reel tables of one database (the registry's)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, store: Store) -> ReelStore:
        migrate(store.engine)
        return cls(store)

    # -- reels ----------------------------------------------------------------------------

    def add_reel(self, project_id: str, source: Path, source_sha256: str, shots_from: str,
                 shots: ShotList) -> Reel:
        reel_id = f"reel-{secrets.token_hex(4)}"
        at = now()
        with self.store.session() as s:
            if s.get(ReelProjectRow, project_id) is None:
                s.add(ReelProjectRow(project_id=project_id, created_at=at))
                s.flush()
            s.add(ReelRow(reel_id=reel_id, project_id=project_id, source_path=str(source),
                          source_sha256=source_sha256, shots_from=shots_from,
                          shot_list=shots.to_json(), created_at=at))
        return self.reel(reel_id)

    def reel(self, reel_id: str) -> Reel:
        with self.store.session() as s:
            row = s.get(ReelRow, reel_id)
            if row is None:
                raise ReelNotFoundError(f"no reel {reel_id!r} (see `studio reel status`)")
            cast = {c.character: c.performer_id for c in s.scalars(
                select(ReelCastRow).where(ReelCastRow.reel_id == reel_id))}
            return Reel(row.reel_id, row.project_id, Path(row.source_path), row.source_sha256,
                        row.shots_from, ShotList.from_json(row.shot_list), cast, row.created_at)

    def reels(self) -> list[Reel]:
        with self.store.session() as s:
            ids = list(s.scalars(select(ReelRow.reel_id).order_by(ReelRow.created_at)))
        return [self.reel(i) for i in ids]

    def set_cast(self, reel_id: str, character: str, performer_id: str) -> None:
        self.reel(reel_id)
        with self.store.session() as s:
            row = s.get(ReelCastRow, (reel_id, character))
            if row is None:
                s.add(ReelCastRow(reel_id=reel_id, character=character,
                                  performer_id=performer_id, updated_at=now()))
            else:
                row.performer_id = performer_id
                row.updated_at = now()

    def set_dialogue(self, reel_id: str, language: str,
                     sources: list[DialogueSource]) -> None:
        """Replace the reel's dialogue in ``language`` with ``sources``."""
        with self.store.session() as s:
            for old in s.scalars(select(ReelDialogueRow).where(
                    ReelDialogueRow.reel_id == reel_id, ReelDialogueRow.language == language)):
                s.delete(old)
            s.flush()
            for d in sources:
                s.add(ReelDialogueRow(reel_id=reel_id, language=language,
                                      character=d.character, kind=d.kind, path=str(d.path),
                                      sha256=d.sha256, updated_at=now()))

    def dialogue(self, reel_id: str, language: str) -> list[DialogueSource]:
        with self.store.session() as s:
            return [DialogueSource(r.character, r.kind, Path(r.path), r.sha256)
                    for r in s.scalars(select(ReelDialogueRow).where(
                        ReelDialogueRow.reel_id == reel_id,
                        ReelDialogueRow.language == language
                    ).order_by(ReelDialogueRow.character))]

    # -- jobs -----------------------------------------------------------------------------

    def open_job(self, reel_id: str, language: str, options: dict[str, Any],
                 shot_count: int) -> str:
        """The reel's job in ``language`` (made on first use), marked running with these
        options; its shots keep their states."""
        with self.store.session() as s:
            row = s.scalars(select(ReelJobRow).where(ReelJobRow.reel_id == reel_id,
                                                     ReelJobRow.language == language)).first()
            if row is None:
                row = ReelJobRow(job_id=f"reeljob-{secrets.token_hex(5)}", reel_id=reel_id,
                                 language=language, status="running", options=options,
                                 deliverables={}, created_at=now(), updated_at=now())
                s.add(row)
                s.flush()
                for i in range(shot_count):
                    s.add(ReelShotRow(job_id=row.job_id, shot=i,
                                      state=ShotState.PENDING.value, input_key="",
                                      characters=[], outcome={}, updated_at=now()))
            row.status = "running"
            row.options = options
            row.error = None
            row.updated_at = now()
            return row.job_id

    def job(self, job_id: str) -> ReelJobRecord:
        with self.store.session() as s:
            row = s.get(ReelJobRow, job_id)
            if row is None:
                raise ReelNotFoundError(f"no reel job {job_id!r}")
            shots = tuple(_shot(r) for r in s.scalars(
                select(ReelShotRow).where(ReelShotRow.job_id == job_id)
                .order_by(ReelShotRow.shot)))
            return ReelJobRecord(row.job_id, row.reel_id, row.language, row.status,
                                 dict(row.options), dict(row.deliverables), row.error, shots,
                                 row.updated_at)

    def jobs_of(self, reel_id: str) -> list[ReelJobRecord]:
        with self.store.session() as s:
            ids = list(s.scalars(select(ReelJobRow.job_id).where(
                ReelJobRow.reel_id == reel_id).order_by(ReelJobRow.language)))
        return [self.job(i) for i in ids]

    def set_shot(self, job_id: str, record: ShotRecord) -> None:
        with self.store.session() as s:
            row = s.get(ReelShotRow, (job_id, record.shot))
            if row is None:
                raise ReelNotFoundError(f"reel job {job_id} has no shot {record.shot}")
            row.state = record.state.value
            row.input_key = record.input_key
            row.characters = list(record.characters)
            row.reason = record.reason
            row.outcome = record.outcome
            row.updated_at = now()

    def finish_job(self, job_id: str, status: str, *, deliverables: dict[str, Any] | None = None,
                   error: str | None = None) -> None:
        with self.store.session() as s:
            row = s.get(ReelJobRow, job_id)
            if row is None:
                raise ReelNotFoundError(f"no reel job {job_id!r}")
            row.status = status
            if deliverables is not None:
                row.deliverables = deliverables
            row.error = error
            row.updated_at = now()
