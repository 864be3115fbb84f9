"""The typed shot list of a reel: which frames each shot holds and how it begins.

A :class:`ShotList` partitions the reel's frames ``0 .. frame_count`` into contiguous
:class:`Shot` s, in order, with no gap and no overlap, so that every frame belongs to exactly
one shot (what a per-shot render and a conform need). How one shot passes to the next is a
:class:`Transition`:

* ``cut``: ``start == boundary == end``, the first frame of the incoming shot;
* ``dissolve``: frames ``start .. end`` (end exclusive) mix the two shots; ``boundary``, where
  the partition puts the change of ownership, lies inside (an edit list's dissolve event
  starts its record-in at ``start``; detection puts the boundary at the middle);
* ``fade``: through black (or one flat colour): frames ``start .. end`` cover the fade-out,
  the black frames and the fade-in (any of them may be empty); ``boundary`` is the first frame
  after the black. The first shot may begin with a fade from black (boundary 0) and the reel
  may end with a fade to black (:attr:`ShotList.tail`, boundary ``frame_count``).

Frame indices are 0-based reel frames; timecodes are SMPTE labels counted from the reel's
start timecode (``pipelines.media.timecode``), out points exclusive as in CMX 3600.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from pipelines.media.probe import MediaInfo, VideoStreamInfo
from pipelines.media.timecode import timecode_at, timecode_to_frame

from .errors import EditListMismatchError, ShotListError

DEFAULT_START_TIMECODE = "00:00:00:00"


class TransitionKind(StrEnum):
    """How one shot passes to the next."""

    CUT = "cut"
    DISSOLVE = "dissolve"
    FADE = "fade"
    WIPE = "wipe"  # edit lists only: any transition other than a dissolve


@dataclass(frozen=True)
class Transition:
    """A change of shot at ``boundary``; frames ``start .. end`` (exclusive) are affected."""

    kind: TransitionKind
    boundary: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.start <= self.boundary <= self.end:
            raise ShotListError(
                f"{self.kind} transition at frame {self.boundary} spans {self.start}-{self.end}"
                ": the boundary must lie inside its transition")
        if self.kind is TransitionKind.CUT and self.start != self.end:
            raise ShotListError(f"a cut at frame {self.boundary} cannot span frames")

    @classmethod
    def cut(cls, frame: int) -> Transition:
        return cls(TransitionKind.CUT, frame, frame, frame)

    @property
    def length(self) -> int:
        """Frames the transition covers (0 for a cut)."""
        return self.end - self.start


@dataclass(frozen=True)
class Shot:
    """Frames ``start .. end`` (exclusive) of the reel.

    ``source`` names where the shot came from (the EDL's reel/clip name; the reel itself for
    detected shots) and ``source_in`` is the frame of that source shown at ``start`` (its
    source timecode as a frame count); ``source_out = source_in + frames``.
    ``record_tc_in``/``record_tc_out`` are the reel timecodes of ``start`` and ``end``
    (out exclusive).
    """

    index: int
    start: int
    end: int
    transition_in: Transition | None
    record_tc_in: str
    record_tc_out: str
    source: str | None = None
    source_in: int = 0

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def source_out(self) -> int:
        return self.source_in + self.frames

    def contains(self, frame: int) -> bool:
        return self.start <= frame < self.end


@dataclass(frozen=True)
class ShotList:
    """The reel's shots, a partition of frames ``0 .. frame_count`` at ``frame_rate``."""

    shots: tuple[Shot, ...]
    frame_rate: Fraction
    frame_count: int
    start_timecode: str = DEFAULT_START_TIMECODE
    tail: Transition | None = None
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.shots:
            raise ShotListError("a shot list needs at least one shot")
        expected = 0
        for i, shot in enumerate(self.shots):
            if shot.index != i:
                raise ShotListError(f"shot {shot.index} is number {i} in the list")
            if shot.start != expected:
                what = "a gap" if shot.start > expected else "an overlap"
                raise ShotListError(
                    f"shot {i} starts at frame {shot.start}, expected {expected}: {what} "
                    "between shots")
            if shot.end <= shot.start:
                raise ShotListError(f"shot {i} ({shot.start}-{shot.end}) holds no frame")
            t = shot.transition_in
            if t is not None and (t.boundary != shot.start or t.start < 0):
                raise ShotListError(f"shot {i}'s transition in is at frame {t.boundary}, "
                                    f"not at its first frame {shot.start}")
            expected = shot.end
        if expected != self.frame_count:
            raise ShotListError(f"the shots end at frame {expected}, the reel at "
                                f"{self.frame_count}")
        if self.tail is not None and (self.tail.boundary != self.frame_count
                                      or self.tail.kind is not TransitionKind.FADE):
            raise ShotListError("a reel's tail transition is a fade ending at its last frame")
        object.__setattr__(self, "_starts", tuple(s.start for s in self.shots))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_transitions(cls, transitions: Sequence[Transition], frame_count: int,
                         frame_rate: Fraction, *,
                         start_timecode: str = DEFAULT_START_TIMECODE,
                         source: str | None = None) -> ShotList:
        """Shots between ``transitions`` (sorted by boundary). A fade at boundary 0 is the
        first shot's fade-in, one at ``frame_count`` the tail; ``source`` names the reel
        itself (``source_in`` is then the reel frame)."""
        head: Transition | None = None
        tail: Transition | None = None
        inner: list[Transition] = []
        for t in sorted(transitions, key=lambda t: t.boundary):
            if t.boundary <= 0:
                head = t
            elif t.boundary >= frame_count:
                tail = t
            else:
                inner.append(t)
        starts = [0, *(t.boundary for t in inner)]
        ends = [*(t.boundary for t in inner), frame_count]
        ins: list[Transition | None] = [head, *inner]
        shots = tuple(
            Shot(i, s, e, t, timecode_at(start_timecode, s, frame_rate),
                 timecode_at(start_timecode, e, frame_rate), source, s)
            for i, (s, e, t) in enumerate(zip(starts, ends, ins, strict=True)))
        return cls(shots, Fraction(frame_rate), frame_count, start_timecode, tail)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.shots)

    def __iter__(self) -> Iterator[Shot]:
        return iter(self.shots)

    def __getitem__(self, index: int) -> Shot:
        return self.shots[index]

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """Every transition in reel order: a head fade, the boundaries between shots, the tail."""
        found = [s.transition_in for s in self.shots if s.transition_in is not None]
        return (*found, *([self.tail] if self.tail is not None else []))

    @property
    def boundaries(self) -> tuple[int, ...]:
        """The first frame of every shot after the first."""
        return self._starts[1:]

    def shot_at(self, frame: int) -> Shot:
        """The shot that holds reel frame ``frame``."""
        if not 0 <= frame < self.frame_count:
            raise IndexError(f"frame {frame} is outside the reel (0-{self.frame_count - 1})")
        return self.shots[bisect.bisect_right(self._starts, frame) - 1]

    def frame_of(self, timecode: str) -> int:
        """The reel frame labelled ``timecode`` (counted from :attr:`start_timecode`)."""
        return (timecode_to_frame(timecode, self.frame_rate)
                - timecode_to_frame(self.start_timecode, self.frame_rate))

    # ------------------------------------------------------------------ storage

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (the studio keeps a reel's shot list in its database)."""
        return {
            "frame_rate": [self.frame_rate.numerator, self.frame_rate.denominator],
            "frame_count": self.frame_count,
            "start_timecode": self.start_timecode,
            "tail": _transition_json(self.tail),
            "shots": [{"start": s.start, "end": s.end, "source": s.source,
                       "source_in": s.source_in, "transition_in": _transition_json(s.transition_in)}
                      for s in self.shots],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShotList:
        """The inverse of :meth:`to_json`; a malformed document is a :class:`ShotListError`."""
        try:
            rate = Fraction(int(data["frame_rate"][0]), int(data["frame_rate"][1]))
            start_tc = str(data["start_timecode"])
            shots = tuple(
                Shot(i, int(s["start"]), int(s["end"]), _transition_from(s["transition_in"]),
                     timecode_at(start_tc, int(s["start"]), rate),
                     timecode_at(start_tc, int(s["end"]), rate),
                     None if s["source"] is None else str(s["source"]), int(s["source_in"]))
                for i, s in enumerate(data["shots"]))
            return cls(shots, rate, int(data["frame_count"]), start_tc,
                       _transition_from(data["tail"]))
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            if isinstance(exc, ShotListError):
                raise
            raise ShotListError(f"not a shot list document: {type(exc).__name__}: {exc}"
                                ) from exc

    # ------------------------------------------------------------------ validation

    def check_matches(self, media: MediaInfo | VideoStreamInfo) -> None:
        """Refuse a shot list that does not describe this reel: frame rate and frame count
        must be the probe's (:class:`EditListMismatchError`)."""
        video = media.require_video() if isinstance(media, MediaInfo) else media
        where = f"{media.path.name}: " if isinstance(media, MediaInfo) else ""
        if video.frame_rate != self.frame_rate:
            raise EditListMismatchError(
                f"{where}the reel runs at {_fps(video.frame_rate)} fps, the shot list at "
                f"{_fps(self.frame_rate)} fps")
        if video.frame_count != self.frame_count:
            end = timecode_at(self.start_timecode, self.frame_count, self.frame_rate)
            raise EditListMismatchError(
                f"{where}the reel holds {video.frame_count} frames, the shot list "
                f"{self.frame_count} (its record out is {end})")


def _fps(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"


def _transition_json(t: Transition | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"kind": t.kind.value, "boundary": t.boundary, "start": t.start, "end": t.end}


def _transition_from(data: Mapping[str, Any] | None) -> Transition | None:
    if data is None:
        return None
    return Transition(TransitionKind(data["kind"]), int(data["boundary"]), int(data["start"]),
                      int(data["end"]))
