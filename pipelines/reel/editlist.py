"""Edit lists into shot lists: CMX 3600 EDL and OpenTimelineIO, checked against the reel.

Both formats are read by ``opentimelineio`` (the EDL through the ``otio-cmx3600-adapter``
plugin, at the reel's frame rate, since an EDL does not state one). The single video track
becomes a :class:`~pipelines.reel.shots.ShotList` in the conventions of ``shots``:

* each clip (and each gap: filler in the reel) is a shot; ``source`` is the EDL's reel name
  (else the clip's name) and ``source_in`` its source timecode as a frame count;
* a dissolve (OTIO transition: ``in_offset`` frames before the cut point, ``out_offset``
  after) moves the boundary between its two shots to its middle frame, and the incoming
  shot's ``source_in`` with it; any other transition type (a wipe) is a ``wipe``;
* black (the EDL's ``BL`` reel, an OTIO ``black`` generator) is not a shot: with the
  dissolves or cuts around it, it is a ``fade`` whose boundary is the first frame after the
  black; black at the head or tail is the reel's fade in or out.

The edit list must describe this reel: its record span must hold exactly the reel's frames,
and its record start must be the reel's start timecode when the reel has one (a reel without
a timecode takes the edit list's). Anything else is an
:class:`~pipelines.reel.errors.EditListMismatchError`; an unreadable file an
:class:`~pipelines.reel.errors.EditListError`. Known limit of the CMX adapter: it refuses a
transition on the very first event (a fade in from black at the head of an EDL).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio  # type: ignore[import-untyped]

from pipelines.media import MediaError, MediaNotFoundError
from pipelines.media.probe import MediaInfo, probe
from pipelines.media.timecode import (
    frame_to_timecode,
    is_drop_frame_rate,
    timecode_at,
    timecode_to_frame,
)

from .errors import (
    EditListError,
    EditListMismatchError,
    ReelInputError,
    ReelNotFoundError,
    ShotListError,
)
from .shots import DEFAULT_START_TIMECODE, Shot, ShotList, Transition, TransitionKind

MAX_EDIT_LIST_BYTES = 5 * 1024 * 1024
"""Largest edit list read (5 MiB; a feature's EDL is a few hundred KiB)."""

_ADAPTERS = {".edl": "cmx_3600", ".otio": "otio_json"}
_EVENT = re.compile(r"^\s*\d{1,6}\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+"
                    r"(\d\d:\d\d:\d\d[:;]\d\d)\s+(\d\d:\d\d:\d\d[:;]\d\d)\s+"
                    r"(\d\d:\d\d:\d\d[:;]\d\d)\s+(\d\d:\d\d:\d\d[:;]\d\d)\s*$")


@dataclass(frozen=True)
class _Item:
    kind: str  # "clip", "gap", "black"
    name: str | None
    start: int  # record frame (from the track's start)
    end: int
    source_in: int


@dataclass(frozen=True)
class _Join:
    kind: TransitionKind
    before: int  # frames before the cut point
    after: int


def load_edit_list(path: str | os.PathLike[str], reel: str | os.PathLike[str] | MediaInfo
                   ) -> ShotList:
    """The shot list that the EDL (``.edl``) or OpenTimelineIO file (``.otio``) at ``path``
    gives for ``reel`` (a path, probed here, or its :class:`MediaInfo`)."""
    p = Path(path)
    info = _probe(reel)
    video = info.require_video()
    rate = video.frame_rate
    timeline, record_start = _read(p, rate)
    items, joins = _track_items(p, timeline, rate)
    total = items[-1].end if items else 0
    if total <= 0:
        raise EditListError(f"{p.name}: the edit list holds no frames")
    reel_tc = info.timecode
    start_tc = reel_tc or record_start or DEFAULT_START_TIMECODE
    if reel_tc is not None and record_start is not None and \
            timecode_to_frame(record_start, rate) != timecode_to_frame(reel_tc, rate):
        raise EditListMismatchError(
            f"{p.name}: the edit list's record timecode starts at {record_start}, the reel "
            f"{info.path.name} at {reel_tc}")
    shots = _shots(p, items, joins, total, rate, start_tc)
    shots.check_matches(info)
    return shots


def _probe(reel: str | os.PathLike[str] | MediaInfo) -> MediaInfo:
    if isinstance(reel, MediaInfo):
        return reel
    try:
        return probe(reel, require_video=True)
    except MediaNotFoundError as exc:
        raise ReelNotFoundError(f"reel {exc.path}: {exc.reason}") from exc
    except MediaError as exc:
        raise ReelInputError(f"reel {exc.path}: {exc.reason}") from exc


def _read(path: Path, rate: Fraction) -> tuple[Any, str | None]:
    """The OTIO timeline and the record timecode of the first frame (if the file says)."""
    adapter = _ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise EditListError(f"{path.name}: an edit list is a CMX 3600 EDL (.edl) or an "
                            "OpenTimelineIO file (.otio)")
    if not path.is_file():
        raise ReelNotFoundError(f"edit list {path}: no such file")
    size = path.stat().st_size
    if size > MAX_EDIT_LIST_BYTES:
        raise EditListError(f"{path.name} is {size} bytes; the limit is {MAX_EDIT_LIST_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EditListError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise EditListError(f"{path.name}: the file is empty")
    try:
        if adapter == "cmx_3600":
            result = otio.adapters.read_from_string(text, adapter, rate=float(rate))
        else:
            result = otio.adapters.read_from_string(text, adapter)
    except Exception as exc:  # the adapters raise whatever their parsers hit
        raise EditListError(f"{path.name}: not {_NAMES[adapter]} this reader accepts "
                            f"({type(exc).__name__}: {exc})") from exc
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if len(timelines) != 1:
            raise EditListError(f"{path.name}: holds {len(timelines)} timelines; give one")
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise EditListError(f"{path.name}: holds a {type(result).__name__}, not a timeline")
    if adapter == "cmx_3600":
        return result, _edl_record_start(text, rate)
    start = result.global_start_time
    if start is None:
        return result, None
    return result, frame_to_timecode(_frames(path, start, rate), rate)


_NAMES = {"cmx_3600": "a CMX 3600 EDL", "otio_json": "an OpenTimelineIO file"}


def _edl_record_start(text: str, rate: Fraction) -> str | None:
    """The record in of the first event (the adapter keeps no record timecode)."""
    drop = bool(re.search(r"^\s*FCM:\s*DROP FRAME", text, re.MULTILINE | re.IGNORECASE))
    for line in text.splitlines():
        m = _EVENT.match(line)
        if m is not None:
            label = m.group(3)
            if drop and is_drop_frame_rate(rate):
                label = label[:8] + ";" + label[9:]
            return label
    return None


def _frames(path: Path, time: Any, rate: Fraction) -> int:
    value = float(time.rescaled_to(float(rate)).value)
    frames = round(value)
    if abs(value - frames) > 1e-6:
        raise EditListMismatchError(f"{path.name}: time {time} is not on a frame of the "
                                    f"reel's {float(rate):.3f} fps")
    return frames


def _track_items(path: Path, timeline: Any, rate: Fraction
                 ) -> tuple[list[_Item], dict[int, _Join]]:
    tracks = [t for t in timeline.video_tracks() if len(t)]
    if len(tracks) != 1:
        raise EditListError(f"{path.name}: {len(tracks)} video tracks hold edits; a reel's "
                            "edit list has one (flatten the others first)")
    items: list[_Item] = []
    joins: dict[int, _Join] = {}
    for child in tracks[0]:
        if isinstance(child, otio.schema.Transition):
            kind = TransitionKind.DISSOLVE if "dissolve" in str(child.transition_type).lower() \
                else TransitionKind.WIPE
            joins[len(items)] = _Join(kind, _frames(path, child.in_offset, rate),
                                      _frames(path, child.out_offset, rate))
            continue
        where = child.range_in_parent()
        start = _frames(path, where.start_time, rate)
        end = start + _frames(path, where.duration, rate)
        if isinstance(child, otio.schema.Gap):
            items.append(_Item("gap", None, start, end, 0))
        elif isinstance(child, otio.schema.Clip):
            reel = (child.metadata.get("cmx_3600") or {}).get("reel")
            ref = child.media_reference
            black = reel == "BL" or (isinstance(ref, otio.schema.GeneratorReference)
                                     and str(ref.generator_kind).lower() == "black")
            src = _frames(path, child.source_range.start_time, rate) \
                if child.source_range is not None else 0
            items.append(_Item("black" if black else "clip", str(reel or child.name or "")
                               or None, start, end, src))
        else:
            raise EditListError(f"{path.name}: a {type(child).__name__} inside the video "
                                "track; flatten nested sequences first")
    return items, joins


def _shots(path: Path, items: list[_Item], joins: dict[int, _Join], total: int,
           rate: Fraction, start_tc: str) -> ShotList:
    # (start, end, transition in, name, source_in) per shot, adjusted as transitions come
    rows: list[list[Any]] = []
    fade_from: int | None = None  # start of a fade whose black is being passed
    for i, item in enumerate(items):
        join = joins.get(i)
        cut_point = item.start
        if join is not None and (join.before > cut_point - (items[i - 1].start if i else 0)
                                 or join.after > item.end - item.start):
            raise EditListError(f"{path.name}: the transition at record frame {cut_point} is "
                                "longer than the shots it joins")
        if item.kind == "black":
            if fade_from is None:
                fade_from = cut_point - (join.before if join else 0)
            continue
        transition: Transition | None
        if fade_from is not None:
            end = cut_point + (join.after if join else 0)
            if not rows:  # black at the head: the first shot fades in from it
                transition = Transition(TransitionKind.FADE, 0, 0, end)
                cut_point = 0
            else:
                transition = Transition(TransitionKind.FADE, cut_point, fade_from, end)
            fade_from = None
        elif join is not None:
            start, end = cut_point - join.before, cut_point + join.after
            middle = (start + end) // 2
            transition = Transition(join.kind, middle, start, end)
            cut_point = middle
        else:
            transition = Transition.cut(cut_point) if rows else None
        if rows:
            rows[-1][1] = cut_point
        rows.append([cut_point, item.end, transition, item.name,
                     item.source_in + (cut_point - item.start)])
    if not rows:
        raise EditListError(f"{path.name}: the edit list holds only black")
    tail: Transition | None = None
    if fade_from is not None:  # black at the tail: the last shot fades out into it
        tail = Transition(TransitionKind.FADE, total, fade_from, total)
    rows[-1][1] = total
    shots = tuple(
        Shot(index=n, start=s, end=e, transition_in=t,
             record_tc_in=timecode_at(start_tc, s, rate),
             record_tc_out=timecode_at(start_tc, e, rate), source=name, source_in=max(0, src))
        for n, (s, e, t, name, src) in enumerate(rows))
    try:
        return ShotList(shots, rate, total, start_tc, tail)
    except ShotListError as exc:
        raise EditListError(f"{path.name}: {exc}") from exc
