"""Parse a translated, timed dubbing script (SRT or WebVTT) into exact, validated cues.

The cue timings are parsed by ``pysubs2``; this module decides what it is handed and what it
accepts. The raw bytes are hashed first (``Script.sha256``, the value a consent grant's
``scope.script_hash`` names), then decoded as UTF-8 (a byte-order mark is allowed), line endings
are normalised and the file is split into blocks separated by blank lines. WebVTT header,
``NOTE``, ``STYLE`` and ``REGION`` blocks and cue identifiers (SRT cue numbers) are dropped, and
the remaining cues are written out again in a canonical form for ``pysubs2`` to parse, so that its
known leniencies (a text line that is only digits taken for the next cue's number, a text line
with two inline timestamps taken for a timing line) cannot change what a cue says.

Rules (each refusal is a :class:`ScriptError`, a ``ValueError``):

* **Size**: more than :data:`MAX_SCRIPT_BYTES` (5 MiB) is refused before it is read.
* **Encoding**: UTF-8, with or without a BOM; anything else is refused with the byte offset.
* **Format**: ``vtt`` when the file starts with a ``WEBVTT`` header, else ``srt`` or ``vtt``
  from the extension (``.srt``, ``.vtt``), else ``srt`` when the content has SRT timing lines;
  ``fmt=`` overrides detection. A file with no timing line is not a subtitle file.
* **Timecodes**: ``HH:MM:SS,mmm`` (SRT; ``.`` accepted too) or ``[HH:]MM:SS.mmm`` (WebVTT),
  exactly three millisecond digits, minutes and seconds below 60. WebVTT cue settings after the
  end time (``align:start`` …) are ignored. Times are exact :class:`~fractions.Fraction` seconds.
* **Cues** are numbered 1, 2, … in file order (the number errors name, along with the
  timecodes and the line the cue starts on). Every cue needs text and ``end > start``; cues must
  be in order of start time; no cue may end after ``duration`` when it is given.
* **Overlap**: two cues whose times overlap (touching, ``end == next start``, is fine) are
  refused — one voice cannot speak two lines at once — unless both name a speaker and the
  speakers differ (two performers talking over each other). A cue with no speaker overlapping
  any other cue is refused, since nothing says it is a different voice.
* **Speaker**: from a WebVTT voice span ``<v Name>`` / ``<v.class Name>`` (one voice per cue;
  two different voices in one cue are refused: split the cue), else from a prefix at the start
  of the cue text: a name followed by ``:`` and a space, where the name is either written in
  capitals (letters, digits, spaces, ``.``, ``'``, ``-``; e.g. ``ANA:``, ``DR. KIM:``) or is a
  single capitalised word (``Ana:``). The prefix is removed from the text. Only the first line's
  prefix is read; note that a capitalised word such as ``Note:`` reads as a speaker.
* **Text**: tags (``<i>``, ``<b>``, ``<c.x>``, voice spans, inline timestamps) and SSA override
  blocks (``{\\an8}``) are stripped, HTML entities decoded, line breaks become spaces and runs
  of whitespace collapse to one space.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pysubs2

from pipelines.errors import PipelineInputError
from pipelines.speech.overlap import first_overlap

__all__ = [
    "MAX_SCRIPT_BYTES",
    "Cue",
    "CueOutOfRangeError",
    "CueTimingError",
    "EmptyCueError",
    "EmptyScriptError",
    "NotASubtitleError",
    "OverlappingCuesError",
    "Script",
    "ScriptEncodingError",
    "ScriptError",
    "ScriptTooLargeError",
    "UnorderedCuesError",
    "load_script",
    "script_sha256",
]

#: Largest script accepted, in bytes (5 MiB: hours of dialogue is well under 1 MiB).
MAX_SCRIPT_BYTES = 5 * 1024 * 1024

FORMATS = ("srt", "vtt")


# --------------------------------------------------------------------------- errors


class ScriptError(PipelineInputError):
    """A dubbing script that cannot be used; the message says what to fix."""


class ScriptTooLargeError(ScriptError):
    """The file is larger than :data:`MAX_SCRIPT_BYTES`."""


class ScriptEncodingError(ScriptError):
    """The file is not UTF-8 text."""


class NotASubtitleError(ScriptError):
    """The file is not an SRT or WebVTT script, or a part of it cannot be parsed."""


class EmptyScriptError(ScriptError):
    """The script has no cues."""


class EmptyCueError(ScriptError):
    """A cue has no text to speak."""


class CueTimingError(ScriptError):
    """A cue ends at or before its start."""


class UnorderedCuesError(ScriptError):
    """A cue starts before the cue above it."""


class OverlappingCuesError(ScriptError):
    """Two cues of the same (or an unnamed) speaker overlap in time."""


class CueOutOfRangeError(ScriptError):
    """A cue ends after the end of the shot."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Cue:
    """One line of dialogue: ``index`` is 1-based in file order; times in exact seconds."""

    index: int
    start: Fraction
    end: Fraction
    text: str
    speaker: str | None = None

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


@dataclass(frozen=True)
class Script:
    """A validated dubbing script; ``sha256`` is the hex digest of the file's raw bytes."""

    cues: tuple[Cue, ...]
    format: str
    sha256: str

    @property
    def speakers(self) -> tuple[str, ...]:
        """Named speakers in order of first appearance."""
        return tuple(dict.fromkeys(c.speaker for c in self.cues if c.speaker is not None))

    @property
    def end(self) -> Fraction:
        """End of the last-ending cue."""
        return max(c.end for c in self.cues)


def script_sha256(source: str | os.PathLike[str] | bytes) -> str:
    """SHA-256 hex digest of a script's raw bytes (what ``scope.script_hash`` names)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- parsing

_SRT_TIME = r"(\d{1,2}):(\d{2}):(\d{2})[,.](\d{3})"
_VTT_TIME = r"(?:(\d{1,4}):)?(\d{2}):(\d{2})\.(\d{3})"
_TIMING = {
    "srt": re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}\s*$"),
    # WebVTT cue settings may follow the end time, separated by whitespace.
    "vtt": re.compile(rf"^\s*{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+\S.*)?$"),
}
_ANY_TIMING = re.compile(r"\d+:\d+[,.]\d+\s*-->|-->\s*\d*:?\d+:\d+[,.]\d+")
_VTT_META = re.compile(r"^(NOTE|STYLE|REGION)(?:[ \t]|$)")
_INLINE_TIMESTAMP = re.compile(r"<\s*\d[\d:.]*\s*>")
_VOICE = re.compile(r"<\s*v(?:\.[^\s>]*)?\s+([^>]*?)\s*>")
_TAG = re.compile(r"<[^<>\n]*>")
_SSA_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_PREFIX = re.compile(r"^\s*([^\W\d_][\w .'\-]{0,40}?)\s*:\s+(\S.*)$", re.DOTALL)


@dataclass(frozen=True)
class _Block:
    number: int  # 1-based cue number in file order
    line: int  # 1-based line where the timing line is
    timing: str
    text_lines: tuple[str, ...]


def _ms(groups: tuple[str | None, ...]) -> int:
    h, m, s, ms = (int(g) if g else 0 for g in groups)
    if m >= 60 or s >= 60:
        raise ValueError
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def _tc(seconds: Fraction, fmt: str) -> str:
    total_ms = int(seconds * 1000)
    h, rest = divmod(total_ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    sep = "," if fmt == "srt" else "."
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _where(cue: Cue, fmt: str) -> str:
    return f"cue {cue.index} ({_tc(cue.start, fmt)} --> {_tc(cue.end, fmt)})"


def _read(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str | None]:
    if isinstance(source, bytes):
        data, suffix = source, None
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotASubtitleError(f"script not found: {path}") from None
        if size > MAX_SCRIPT_BYTES:
            raise ScriptTooLargeError(
                f"script {path.name} is {size} bytes; the limit is {MAX_SCRIPT_BYTES} bytes "
                "(5 MiB) — split the script per scene"
            )
        data, suffix = path.read_bytes(), path.suffix.lower().lstrip(".")
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptTooLargeError(
            f"script is {len(data)} bytes; the limit is {MAX_SCRIPT_BYTES} bytes (5 MiB) — "
            "split the script per scene"
        )
    return data, suffix


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptEncodingError(
            f"script is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}) is not valid UTF-8 — re-save the script as UTF-8"
        ) from None
    if "\x00" in text:
        raise NotASubtitleError("script contains NUL bytes: this is not an SRT or WebVTT file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _detect(text: str, suffix: str | None, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ScriptError(f"unknown script format {fmt!r}; use one of: {', '.join(FORMATS)}")
        return fmt
    first = text.lstrip("\n").split("\n", 1)[0]
    if re.match(r"WEBVTT(?:[ \t]|$)", first):
        return "vtt"
    if suffix in FORMATS:
        return suffix
    if any(_ANY_TIMING.search(line) for line in text.split("\n")):
        return "srt"
    raise NotASubtitleError(
        "not a subtitle file: no WEBVTT header and no timing line "
        "('00:00:01,000 --> 00:00:02,500'); give an SRT or WebVTT script"
    )


def _blocks(text: str, fmt: str) -> list[_Block]:
    blocks: list[_Block] = []
    lines = text.split("\n")
    i, n = 0, len(lines)
    first_block = True
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        start = i
        while i < n and lines[i].strip():
            i += 1
        block = lines[start:i]
        if fmt == "vtt" and (
            (first_block and block[0].startswith("WEBVTT")) or _VTT_META.match(block[0])
        ):
            first_block = False
            continue
        first_block = False
        timing_at = next((k for k, line in enumerate(block[:2]) if "-->" in line), None)
        if timing_at is None:
            after = f" after cue {blocks[-1].number}" if blocks else ""
            raise NotASubtitleError(
                f"line {start + 1}: text outside any cue{after} ({block[0].strip()[:40]!r}) — "
                "a blank line ends a cue; remove the blank line inside the cue above, or give "
                "this text a timing line"
            )
        number = len(blocks) + 1
        timing = block[timing_at]
        if not _TIMING[fmt].match(timing):
            sep = "," if fmt == "srt" else "."
            example = f"00:00:01{sep}000 --> 00:00:02{sep}500"
            raise NotASubtitleError(
                f"cue {number} (line {start + timing_at + 1}): cannot read timing line "
                f"{timing.strip()!r}; write it as {example!r}"
            )
        text_lines = tuple(_INLINE_TIMESTAMP.sub("", line) for line in block[timing_at + 1 :])
        blocks.append(_Block(number, start + timing_at + 1, timing.strip(), text_lines))
    return blocks


def _canonical(blocks: list[_Block]) -> str:
    # A "0" line after every cue: pysubs2 strips one trailing cue-number line from each cue's
    # text, so giving it one means it never eats a text line that is only digits.
    parts = ["WEBVTT\n\n"]
    for b in blocks:
        parts.append(b.timing + "\n" + "".join(t + "\n" for t in b.text_lines) + "\n0\n")
    return "".join(parts)


def _speaker_and_text(raw: str, number: int) -> tuple[str | None, str]:
    voices = list(dict.fromkeys(v.strip() for v in _VOICE.findall(raw) if v.strip()))
    if len(voices) > 1:
        raise NotASubtitleError(
            f"cue {number} has more than one voice ({', '.join(voices)}); split it into one cue "
            "per speaker"
        )
    speaker: str | None = voices[0] if voices else None
    text = _SSA_OVERRIDE.sub("", raw)
    lines = [html.unescape(_TAG.sub("", line)) for line in text.split("\n")]
    if speaker is None and lines:
        m = _PREFIX.match(lines[0])
        if m is not None and _is_speaker_name(m.group(1)):
            speaker, lines[0] = m.group(1).strip(), m.group(2)
    clean = " ".join(" ".join(lines).split())
    return speaker, clean


def _is_speaker_name(name: str) -> bool:
    name = name.strip()
    if not name:
        return False
    if name.isupper():  # ANA, DR. KIM, JEAN-LUC
        return True
    return " " not in name and name[0].isupper() and (len(name) == 1 or name[1:].islower())


def _parse(text: str, fmt: str) -> list[Cue]:
    blocks = _blocks(text, fmt)
    if not blocks:
        raise EmptyScriptError("script has no cues: there is nothing to dub")
    # The canonical text is always WebVTT-shaped; SRT timings are rewritten with '.' first.
    canonical_blocks = [
        _Block(b.number, b.line, _canonical_timing(b.timing, fmt), b.text_lines) for b in blocks
    ]
    subs = pysubs2.SSAFile.from_string(
        _canonical(canonical_blocks), format_="vtt", keep_html_tags=True
    )
    if len(subs.events) != len(blocks):
        raise NotASubtitleError(
            f"script has {len(blocks)} cues but {len(subs.events)} could be parsed; check that "
            "no text line contains a timing"
        )
    cues: list[Cue] = []
    for block, event in zip(blocks, subs.events, strict=True):
        speaker, clean = _speaker_and_text(event.plaintext, block.number)
        cues.append(
            Cue(
                index=block.number,
                start=Fraction(int(event.start), 1000),
                end=Fraction(int(event.end), 1000),
                text=clean,
                speaker=speaker,
            )
        )
    return cues


def _canonical_timing(timing: str, fmt: str) -> str:
    m = _TIMING[fmt].match(timing)
    assert m is not None  # checked in _blocks
    try:
        start, end = _ms(m.groups()[:4]), _ms(m.groups()[4:8])
    except ValueError:
        raise NotASubtitleError(
            f"timing line {timing!r}: minutes and seconds must be below 60"
        ) from None
    return (
        f"{_tc(Fraction(start, 1000), 'vtt')} --> {_tc(Fraction(end, 1000), 'vtt')}"
    )


def _validate(cues: list[Cue], fmt: str, duration: Fraction | None) -> None:
    for cue in cues:
        if not cue.text:
            raise EmptyCueError(f"{_where(cue, fmt)} has no text to speak; remove it or fill it")
        if cue.end <= cue.start:
            raise CueTimingError(
                f"{_where(cue, fmt)} ends at or before it starts; the end time must be later "
                "than the start time"
            )
    for prev, cue in itertools.pairwise(cues):
        if cue.start < prev.start:
            raise UnorderedCuesError(
                f"cues are out of order: {_where(cue, fmt)} starts before "
                f"{_where(prev, fmt)}; sort the cues by start time"
            )
    pair = first_overlap(cues, start=lambda c: c.start, end=lambda c: c.end,
                         voice=lambda c: c.speaker)
    if pair is not None:
        earlier, cue = pair
        who = f"speaker {cue.speaker}" if cue.speaker == earlier.speaker else "no speaker"
        raise OverlappingCuesError(
            f"{_where(earlier, fmt)} and {_where(cue, fmt)} overlap ({who}): a voice "
            "cannot speak two lines at once; move the later cue to start at or after "
            f"{_tc(earlier.end, fmt)}, or name different speakers"
        )
    if duration is not None:
        for cue in cues:
            if cue.end > duration:
                raise CueOutOfRangeError(
                    f"{_where(cue, fmt)} ends after the shot, which is "
                    f"{_tc(Fraction(duration), fmt)} long; trim or move the cue"
                )


def load_script(
    source: str | os.PathLike[str] | bytes,
    *,
    duration: Fraction | None = None,
    fmt: str | None = None,
) -> Script:
    """Read, parse and validate a dubbing script from a path or its raw bytes.

    ``duration`` is the shot length in seconds; when given, every cue must end within it.
    ``fmt`` (``"srt"`` or ``"vtt"``) overrides format detection. Raises :class:`ScriptError`.
    """
    data, suffix = _read(source)
    digest = hashlib.sha256(data).hexdigest()
    text = _decode(data)
    kind = _detect(text, suffix, fmt)
    cues = _parse(text, kind)
    _validate(cues, kind, duration)
    return Script(cues=tuple(cues), format=kind, sha256=digest)
