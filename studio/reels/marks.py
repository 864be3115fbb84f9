"""The watermarks of a conformed reel, shot by shot (``studio verify`` on a reel's master or
review proxy).

A reel deliverable carries no watermark of its own: each rendered shot keeps the payload its
render embedded (the conform copies the shot's pixels, re-encoded), and the untouched shots
carry none. So the check reads each shot's own frames (its range in the reel, from the reel's
shot list) and decodes them apart: a rendered shot must give back its render's payload (the
manifest store's record of the shot's output); any payload read is looked up in the store,
which names the output it was issued to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

#: Frames decoded per shot: the watermark's own file read uses 8 (``MAX_FRAMES``).
PER_SHOT = 8
#: Frames left out at each end of a shot when it is long enough: a dissolve's mixed frames.
EDGE = 2


@dataclass(frozen=True)
class ShotSpan:
    """One shot of the reel as the check needs it: its frames and what it should carry."""

    shot: int
    start: int
    end: int
    expected: int | None  # the shot's render's payload; None: untouched
    output_sha256: str | None


@dataclass(frozen=True)
class ShotMark:
    span: ShotSpan
    payload: int | None
    frames: int
    status: str  # found | found (weak read) | mismatch | not found | untouched | unexpected
    issued_to: str | None  # the output the read payload was issued to (manifest store)

    @property
    def ok(self) -> bool:
        return self.status in ("found", "found (weak read)", "untouched")

    def to_json(self) -> dict[str, Any]:
        s = self.span
        return {"shot": s.shot, "start": s.start, "end": s.end,
                "expected": None if s.expected is None else f"{s.expected:08x}",
                "payload": None if self.payload is None else f"{self.payload:08x}",
                "frames": self.frames, "status": self.status, "issued_to": self.issued_to,
                "output_sha256": s.output_sha256}


def _sampled(span: ShotSpan) -> list[int]:
    first, last = span.start, span.end - 1
    if span.end - span.start > 2 * EDGE + PER_SHOT:
        first, last = first + EDGE, last - EDGE
    count = min(PER_SHOT, last - first + 1)
    return sorted({round(float(x)) for x in np.linspace(first, last, count)})


def _frames(path: Path, wanted: set[int]) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """The wanted frames of the file's first video stream, by index, decoded in one pass."""
    last = max(wanted, default=-1)
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index > last:
                return
            if index in wanted:
                yield index, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def read_marks(path: Path, spans: Sequence[ShotSpan],
               issued_to: Any = None) -> list[ShotMark]:
    """Decode each span's frames of ``path`` apart. ``issued_to(payload)``: the output a
    payload was issued to (``None`` when unknown)."""
    from studio.provenance.watermark import WatermarkDetector, strip_black_bars

    picks = {s.shot: _sampled(s) for s in spans}
    wanted = {i for p in picks.values() for i in p}
    got: dict[int, NDArray[np.uint8]] = dict(_frames(path, wanted))
    detector = WatermarkDetector()
    marks = []
    for span in spans:
        frames = [strip_black_bars(got[i]) for i in picks[span.shot] if i in got]
        detection = detector.detect_frames(frames)
        payload = detection.payload
        if span.expected is not None:
            if detection.closest([span.expected]) == span.expected:
                status = "found" if payload == span.expected else "found (weak read)"
                payload = span.expected
            else:
                status = "mismatch" if payload is not None else "not found"
        who = issued_to(payload) if issued_to is not None and payload is not None else None
        if span.expected is None:
            # A chance read of an unmarked picture decodes now and then (payload_code:
            # p <= 6.4e-4); only a payload the studio issued says an edit is there.
            status = "untouched" if who is None else "unexpected"
        marks.append(ShotMark(span, payload, len(frames), status, who))
    return marks
