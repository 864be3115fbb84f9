"""Dialogue for a reel: who speaks when, and in which shot.

Three sources give :class:`DialogueLine` s in seconds from the reel's first frame:

* a timed script whose cues name their character: SRT or WebVTT, read by
  :func:`pipelines.speech.load_script` (``ANA: text`` prefixes or ``<v Ana>`` voice spans);
* a CSV table with a header naming the columns ``character``, ``tc_in``, ``tc_out`` and
  ``text`` (any order, case-insensitive; other columns ignored). Times are record
  timecodes (``HH:MM:SS:FF``, ``;FF`` drop-frame) counted from the reel's start timecode, or
  ``HH:MM:SS.mmm`` seconds from the reel's first frame;
* per-character dialogue stems (one audio file per character, as long as the reel): each
  stretch of voice (silero VAD, ``pipelines.speech.detect_voice``) is a line without text.

:func:`assign_dialogue` puts each line on the reel's frames (a line from ``t0`` to ``t1``
seconds covers the frames displayed during it: ``floor(t0 * rate)`` up to
``ceil(t1 * rate)``, exclusive) and into the shots those frames belong to. A line that
reaches into a neighbouring shot by at most ``tolerance`` frames (subtitle timing is rarely
frame-exact at a cut) is clipped to its shot; one that crosses a cut further is *crossing*:
it is always reported, and with ``crossing="split"`` its parts also go to each shot
(``ShotLine.split``), with ``"report"`` to none.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pipelines.media import MediaError
from pipelines.media.timecode import timecode_to_frame
from pipelines.speech.overlap import first_overlap

from .errors import DialogueError, ReelNotFoundError
from .shots import DEFAULT_START_TIMECODE, ShotList

MAX_TABLE_BYTES = 5 * 1024 * 1024
CrossingPolicy = Literal["split", "report"]

_SECONDS = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})\.(\d{1,3})$")
_COLUMNS = ("character", "tc_in", "tc_out", "text")
#: A subtitle style override (``{\\an8}``), which the script reader drops.
_STYLE_OVERRIDE = re.compile(r"\{\\[^{}]*\}")


@dataclass(frozen=True)
class DialogueLine:
    """One line: ``character`` (``None`` when the script names nobody), seconds from the
    reel's first frame, ``text`` (empty for a line found in a stem), and ``origin`` (file
    and cue or row number, for messages)."""

    index: int
    character: str | None
    start: Fraction
    end: Fraction
    text: str
    origin: str

    def frames(self, rate: Fraction) -> tuple[int, int]:
        """Reel frames ``first .. last`` (exclusive) displayed while the line is spoken."""
        return math.floor(self.start * rate), math.ceil(self.end * rate)


@dataclass(frozen=True)
class ShotLine:
    """A line (or, when ``split``, the part of it) in one shot: reel frames ``start .. end``
    (exclusive) inside the shot. ``span``: for a split line, the frames all its parts cover
    (``first .. end``), which :meth:`words` shares out."""

    line: DialogueLine
    shot: int
    start: int
    end: int
    split: bool = False
    span: tuple[int, int] | None = None

    def words(self) -> str:
        """The words spoken in this part: the whole text, or for a line split across a cut
        the share of its words in proportion to the part's frames of ``span``. Adjacent
        parts share a boundary, so they partition the words: each is said once, near where
        it falls (a part too short for a word says nothing)."""
        if not self.split or self.span is None:
            return self.line.text
        first, end = self.span
        words = _words(self.line.text)
        total = max(1, end - first)
        a = round(Fraction(self.start - first, total) * len(words))
        b = round(Fraction(self.end - first, total) * len(words))
        return " ".join(words[a:b])

    def seconds(self, rate: Fraction) -> tuple[Fraction, Fraction]:
        """The part's time in the reel: the line's own times, cut to the part's frames when
        it is split."""
        if not self.split:
            return self.line.start, self.line.end
        return (max(self.line.start, Fraction(self.start) / rate),
                min(self.line.end, Fraction(self.end) / rate))


def _words(text: str) -> list[str]:
    """``text``'s words for sharing out, each with the tokens after it (before it, at the
    start) that say nothing: punctuation such as ``—`` or ``...`` and subtitle style
    overrides such as ``{\\an8}``, so that no part of a split line is one of those alone. A
    text with no word at all is one."""
    words: list[str] = []
    lead: list[str] = []
    for token in text.split():
        if not any(ch.isalnum() for ch in _STYLE_OVERRIDE.sub("", token)):
            if words:
                words[-1] += " " + token
            else:
                lead.append(token)
        else:
            words.append(" ".join([*lead, token]))
            lead = []
    return words or ([" ".join(lead)] if lead else [])


@dataclass(frozen=True)
class CrossingLine:
    """A line that crosses a cut: the shots it covers and its frames in each."""

    line: DialogueLine
    parts: tuple[tuple[int, int, int], ...]  # (shot, first frame, end frame)

    @property
    def shots(self) -> tuple[int, ...]:
        return tuple(p[0] for p in self.parts)


@dataclass(frozen=True)
class ShotDialogue:
    """Every line in one shot, per character, in time order."""

    shot: int
    by_character: Mapping[str, tuple[ShotLine, ...]]

    @property
    def characters(self) -> tuple[str, ...]:
        return tuple(self.by_character)


@dataclass(frozen=True)
class DialogueAssignment:
    """Per-shot, per-character lines; lines that cross cuts and lines that name nobody."""

    shots: tuple[ShotDialogue, ...]
    crossing: tuple[CrossingLine, ...] = field(default_factory=tuple)
    unnamed: tuple[DialogueLine, ...] = field(default_factory=tuple)

    @property
    def characters(self) -> tuple[str, ...]:
        """Characters in order of first line."""
        seen: dict[str, None] = {}
        for shot in self.shots:
            for name in shot.by_character:
                seen.setdefault(name, None)
        return tuple(seen)

    def lines(self, shot: int, character: str) -> tuple[ShotLine, ...]:
        return tuple(self.shots[shot].by_character.get(character, ()))

    def shots_of(self, character: str) -> tuple[int, ...]:
        """The shots in which ``character`` speaks (what to re-render when their dub changes)."""
        return tuple(s.shot for s in self.shots if character in s.by_character)


# --------------------------------------------------------------------------- reading


def load_dialogue(path: str | os.PathLike[str], shots: ShotList) -> tuple[DialogueLine, ...]:
    """The lines of a timed script: ``.srt``/``.vtt`` (speaker prefixes) or ``.csv``."""
    p = Path(path)
    if not p.is_file():
        raise ReelNotFoundError(f"dialogue script {p}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".srt", ".vtt"):
        return _subtitle_lines(p, shots)
    if suffix == ".csv":
        return _csv_lines(p, shots)
    raise DialogueError(f"{p.name}: a timed script is .srt, .vtt or .csv")


def _subtitle_lines(path: Path, shots: ShotList) -> tuple[DialogueLine, ...]:
    from pipelines.speech.script import ScriptError, load_script

    duration = Fraction(shots.frame_count) / shots.frame_rate
    try:
        script = load_script(path, duration=duration)
    except ScriptError as exc:
        raise DialogueError(f"{path.name}: {exc}") from exc
    return tuple(DialogueLine(c.index, c.speaker, c.start, c.end, c.text,
                              f"{path.name} cue {c.index}") for c in script.cues)


def _csv_lines(path: Path, shots: ShotList) -> tuple[DialogueLine, ...]:
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise DialogueError(f"{path.name} is {size} bytes; the limit is {MAX_TABLE_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DialogueError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = list(reader)
    if not rows:
        raise DialogueError(f"{path.name}: the table is empty")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise DialogueError(f"{path.name}: the header lacks {', '.join(missing)} (it needs "
                            f"{', '.join(_COLUMNS)}; it has {', '.join(header) or 'nothing'})")
    col = {c: header.index(c) for c in _COLUMNS}
    lines: list[DialogueLine] = []
    start_tc = shots.start_timecode or DEFAULT_START_TIMECODE
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path.name} row {number}"
        if len(row) <= max(col.values()):
            raise DialogueError(f"{where}: {len(row)} columns, the header has {len(header)}")
        character = row[col["character"]].strip() or None
        t0 = _time(row[col["tc_in"]], shots.frame_rate, start_tc, where, "tc_in")
        t1 = _time(row[col["tc_out"]], shots.frame_rate, start_tc, where, "tc_out")
        if t1 <= t0:
            raise DialogueError(f"{where}: tc_out {row[col['tc_out']].strip()} is not after "
                                f"tc_in {row[col['tc_in']].strip()}")
        lines.append(DialogueLine(len(lines) + 1, character, t0, t1,
                                  " ".join(row[col["text"]].split()), where))
    if not lines:
        raise DialogueError(f"{path.name}: the table has no lines")
    _check_table(lines, Fraction(shots.frame_count) / shots.frame_rate)
    return tuple(lines)


def _check_table(lines: Sequence[DialogueLine], duration: Fraction) -> None:
    """What ``load_script`` refuses in a subtitle file, refused in a table when it is read
    (not at render time): a line past the reel's end, and two lines of one voice at once
    (the same character, or a line naming nobody over any other: nothing says it is another
    voice). Characters that differ may talk over each other; touching is not overlapping."""
    for line in lines:  # (assign_dialogue's own check, with the same words, before it)
        if line.end > duration:
            raise DialogueError(f"{line.origin}: the line ends at {float(line.end):.3f} s, "
                                f"after the reel's last frame ({float(duration):.3f} s); "
                                "trim or move the line")
    pair = first_overlap(lines, start=lambda x: x.start, end=lambda x: x.end,
                         voice=lambda x: x.character)
    if pair is not None:
        earlier, line = pair
        who = (f"character {line.character}" if line.character == earlier.character
               else "a line naming no character")
        raise DialogueError(
            f"{earlier.origin} and {line.origin} overlap ({who}): a voice cannot speak "
            f"two lines at once; start the later one at or after {float(earlier.end):.3f} "
            "s, or name different characters")


def _time(cell: str, rate: Fraction, start_tc: str, where: str, column: str) -> Fraction:
    value = cell.strip()
    m = _SECONDS.match(value)
    if m is not None:
        h, mi, s, ms = m.groups()
        if int(mi) >= 60 or int(s) >= 60:
            raise DialogueError(f"{where}: {column} {value!r} has minutes or seconds over 59")
        return Fraction(int(h) * 3600 + int(mi) * 60 + int(s)) + Fraction(int(ms.ljust(3, "0")),
                                                                          1000)
    try:
        frame = timecode_to_frame(value, rate) - timecode_to_frame(start_tc, rate)
    except ValueError as exc:
        raise DialogueError(f"{where}: {column} {value!r}: {exc} (write HH:MM:SS:FF record "
                            "timecode or HH:MM:SS.mmm seconds)") from None
    if frame < 0:
        raise DialogueError(f"{where}: {column} {value} is before the reel's start timecode "
                            f"{start_tc}")
    return Fraction(frame) / rate


def stem_lines(stems: Mapping[str, str | os.PathLike[str]], *, threshold: float = 0.5,
               min_silence_s: float = 0.3) -> tuple[DialogueLine, ...]:
    """Lines found in per-character dialogue stems (``{character: audio file}``), each
    stretch of voice one line without text, in time order. The stems start at the reel's
    first frame."""
    from pipelines.media.audio import downmix, load_audio, resample
    from pipelines.speech.recognition import RecognitionError, detect_voice

    found: list[tuple[Fraction, Fraction, str, str]] = []
    for character, stem in stems.items():
        p = Path(stem)
        if not p.is_file():
            raise ReelNotFoundError(f"dialogue stem of {character} {p}: no such file")
        try:
            audio = resample(downmix(load_audio(p), "mono"), 16000)
            segments = detect_voice(audio, threshold=threshold, min_silence_s=min_silence_s)
        except (MediaError, RecognitionError, ValueError) as exc:
            raise DialogueError(f"dialogue stem of {character} ({p.name}): {exc}") from exc
        for seg in segments:
            found.append((Fraction(seg.start).limit_denominator(16000),
                          Fraction(seg.end).limit_denominator(16000), character, p.name))
    found.sort()
    return tuple(DialogueLine(i + 1, c, s, e, "", f"{name} at {float(s):.2f} s")
                 for i, (s, e, c, name) in enumerate(found))


# --------------------------------------------------------------------------- assigning


def assign_dialogue(lines: Iterable[DialogueLine], shots: ShotList, *,
                    crossing: CrossingPolicy = "split", tolerance: int = 2
                    ) -> DialogueAssignment:
    """Put every line into the shots its frames fall in (see the module's docstring)."""
    if crossing not in ("split", "report"):
        raise ValueError(f"crossing={crossing!r}: 'split' or 'report'")
    rate = shots.frame_rate
    per_shot: list[dict[str, list[ShotLine]]] = [{} for _ in shots]
    crossings: list[CrossingLine] = []
    unnamed: list[DialogueLine] = []
    for line in lines:
        first, end = line.frames(rate)
        if end > shots.frame_count:
            raise DialogueError(
                f"{line.origin}: the line ends at {float(line.end):.3f} s, after the reel's "
                f"last frame ({shots.frame_count} frames, "
                f"{float(shots.frame_count / rate):.3f} s)")
        if line.character is None:
            unnamed.append(line)
            continue
        parts = _parts(shots, first, end, tolerance)
        if len(parts) == 1:
            shot, a, b = parts[0]
            per_shot[shot].setdefault(line.character, []).append(ShotLine(line, shot, a, b))
            continue
        crossings.append(CrossingLine(line, tuple(parts)))
        if crossing == "split":
            span = (parts[0][1], parts[-1][2])
            for shot, a, b in parts:
                per_shot[shot].setdefault(line.character, []).append(
                    ShotLine(line, shot, a, b, split=True, span=span))
    return DialogueAssignment(
        shots=tuple(ShotDialogue(i, {c: tuple(sorted(v, key=lambda s: s.start))
                                     for c, v in d.items()})
                    for i, d in enumerate(per_shot)),
        crossing=tuple(crossings), unnamed=tuple(unnamed))


def _parts(shots: ShotList, first: int, end: int, tolerance: int
           ) -> list[tuple[int, int, int]]:
    """(shot, first, end) for each shot the frames cover, less slivers of ``tolerance``
    frames at either end when the rest lies in one shot."""
    last = max(first, end - 1)
    covered = range(shots.shot_at(first).index, shots.shot_at(last).index + 1)
    parts = [(i, max(first, shots[i].start), min(end, shots[i].end)) for i in covered]
    while len(parts) > 1 and parts[0][2] - parts[0][1] <= tolerance:
        parts.pop(0)
    while len(parts) > 1 and parts[-1][2] - parts[-1][1] <= tolerance:
        parts.pop()
    return parts


def lines_by_character(lines: Sequence[DialogueLine]) -> dict[str, tuple[DialogueLine, ...]]:
    """The lines grouped per named character, in time order."""
    out: dict[str, list[DialogueLine]] = {}
    for line in sorted(lines, key=lambda x: x.start):
        if line.character is not None:
            out.setdefault(line.character, []).append(line)
    return {c: tuple(v) for c, v in out.items()}
