"""What an operator asks the studio to render, checked before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from consent.enums import Channel
from studio.errors import InputNotFoundError, RequestError, SelectionError

Operation = Literal["lipsync", "reenact"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LABEL = re.compile(r"^t[1-9][0-9]{0,5}$")
OUTPUT_SUFFIXES = (".mp4", ".mov")
#: The request's input files, by the names the decision, its token and the job record use.
INPUT_NAMES = ("source", "dub", "m_and_e", "script", "driver", "motion")
#: Faces one lip-sync may give voices to (a dub's channels, a script's speakers): each is a
#: drive, a mouth model and a QC track of its own.
MAX_SPEAKERS = 4


__all__ = ["INPUT_NAMES", "MAX_SPEAKERS", "InputNotFoundError", "Operation", "RenderRequest",
           "RequestError", "SelectionError"]

@dataclass(frozen=True)
class RenderRequest:
    """One render. Paths are the operator's files as asked; the job copies each into its own
    staging folder as it hashes it (step 1) and runs on the copies from then on.

    ``tracks``: face tracks to edit by label (``t1``, …); empty means every track that matches
    a performer with consent. ``speakers`` maps a script speaker to the track that speaks the
    line; it can only name chosen tracks. ``unmatched_faces``: what other faces (and stretches
    of a chosen track not verified as its performer) mean: left untouched, or a deny (a
    project's ``projects.yaml`` can require ``deny``; a request cannot loosen it).
    ``output_name`` is a plain file name (letters, digits, ``.``, ``_``, ``-``; ``.mp4`` or
    ``.mov``) inside the outputs folder.
    """

    operation: Operation
    source: Path
    project_id: str
    language: str
    territory: str
    operator: str
    channel: Channel = Channel.STREAMING
    source_language: str | None = None
    episode: str | None = None
    scene: str | None = None
    tracks: tuple[str, ...] = ()
    commercial: bool = True
    output_name: str | None = None
    unmatched_faces: Literal["leave_untouched", "deny"] = "leave_untouched"
    # lip-sync
    dub: Path | None = None
    m_and_e: Path | None = None
    script: Path | None = None
    speakers: dict[str, str] = field(default_factory=dict)
    dub_tolerance_s: float = 0.5
    #: Several speakers' dubs in one file, a speaker per channel (``speakers`` gives each
    #: one's face): one pass edits each face to its own voice (a reel's two-person shot).
    dub_channels: tuple[str, ...] = ()
    # reenactment
    driver: Path | None = None
    motion: Path | None = None
    head_pose: bool = False

    def __post_init__(self) -> None:
        if self.operation not in ("lipsync", "reenact"):
            raise RequestError(f"unknown operation {self.operation!r}: lipsync or reenact")
        for name in INPUT_NAMES:
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise InputNotFoundError(f"{name}: {value} is not a readable file")
        if self.operation == "lipsync":
            if (self.dub is None) == (self.script is None):
                raise RequestError("a lip-sync needs either a dub track (--dub) or a translated "
                                   "script (--script), not both")
            if self.m_and_e is not None and self.dub is None:
                raise RequestError("an M&E stem goes with a recorded dub (--dub)")
        elif (self.driver is None) == (self.motion is None):
            raise RequestError("a reenactment needs either a driving video (--driver) or a "
                               "motion file (--motion)")
        for label in (*self.tracks, *self.speakers.values()):
            # fullmatch: `$` would let "t1\n" through. A label that names no face is a
            # usage error like an unknown face (exit 2).
            if not _LABEL.fullmatch(label):
                raise SelectionError(f"track {label!r}: track labels look like t1, t2, …")
        # A speaker map can only choose among the chosen faces (checked again, against the
        # authorised segments, once the shot is identified).
        stray = sorted({t for t in self.speakers.values() if self.tracks
                        and t not in self.tracks})
        if stray:
            raise SelectionError(f"--speaker names {', '.join(stray)}, which is not among "
                                 f"the chosen faces ({', '.join(self.tracks)}); a speaker can "
                                 "only be given a face the render may edit")
        faces: dict[str, list[str]] = {}
        for speaker, label in self.speakers.items():
            faces.setdefault(label, []).append(speaker)
        shared = {label: names for label, names in faces.items() if len(names) > 1}
        if shared:
            # One face follows one drive: the second speaker's would replace the first's, and
            # the first's lines would play over a mouth saying the other's.
            label, names = next(iter(shared.items()))
            raise SelectionError(f"--speaker gives {label} to {', '.join(names)}: a face "
                                 "speaks for one speaker")
        if self.dub_channels:
            if self.dub is None:
                raise RequestError("dub channels name the speakers of a dub's channels: "
                                   "give the dub (--dub)")
            unmapped = [c for c in self.dub_channels if c not in self.speakers]
            if unmapped or len(set(self.dub_channels)) != len(self.dub_channels) or len(
                    self.dub_channels) > MAX_SPEAKERS:
                raise RequestError(f"dub channels: one to {MAX_SPEAKERS} distinct speakers, "
                                   "each given a face with --speaker (unmapped: "
                                   f"{', '.join(unmapped)})")
        if self.unmatched_faces not in ("leave_untouched", "deny"):
            raise RequestError("unmatched faces: leave_untouched or deny")
        out = self.output_name
        if out is not None and (not _SAFE_NAME.match(out)
                                or Path(out).suffix.lower() not in OUTPUT_SUFFIXES):
            raise RequestError(f"output name {out!r}: use letters, digits, '.', '_' and '-' "
                               f"only, ending in {' or '.join(OUTPUT_SUFFIXES)}")
        if not self.operator.strip():
            raise RequestError("the operator's name is required (it goes in the ledger)")
        if not 0.0 <= self.dub_tolerance_s <= 5.0:
            raise RequestError("dub tolerance must be within 0..5 s")

    def input_files(self) -> dict[str, Path]:
        """The input files given (name → path), in :data:`INPUT_NAMES` order."""
        return {n: Path(getattr(self, n)) for n in INPUT_NAMES if getattr(self, n) is not None}

    def default_output_name(self, job_id: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.source.stem).strip("._-")[:60] or "shot"
        return f"{stem}.{self.operation}.{self.language}.{job_id[-8:]}.mp4"
