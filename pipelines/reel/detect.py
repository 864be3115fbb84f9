"""Automatic shot detection on PyAV: hard cuts, dissolves and fades, in one streaming pass.

Every frame is decoded once and shrunk by swscale to a small RGB thumbnail (``width`` pixels
wide, 64 by default); the detector keeps only a ring of recent thumbnails (bounded by the
longest dissolve it looks for, not by the reel's length) and a few numbers per frame.

* **Cuts**: the mean absolute difference of consecutive thumbnails, ``d1(t)``. A cut is a
  peak that is both large (``cut_threshold``, 0-255 scale) and isolated: at least
  ``cut_peak_ratio`` times the largest other difference within ``cut_window`` frames, so a
  fast pan or a flash of motion, whose differences stay high for several frames, is not one.
  The threshold adapts to the shot: a shaky shot needs a larger peak.
* **Dissolves** (and the two halves of a fade, which are dissolves to and from a flat
  frame): at several scales ``k``, frame ``t`` is compared with the frames ``k`` before and
  after. Inside a dissolve the middle frame is their average (``R_k(t)``, its distance to the
  average, is small) while the two ends differ (``D_k(t)`` large); a cut (R = D/2), a static
  shot (D small) or a moving camera (the average is a ghost, R large) are not. A run of such
  frames is then measured on the thumbnails: each frame's mix ``alpha`` of the two anchors
  outside the run is fitted, and the dissolve is accepted only where alpha rises in a straight
  line from 0 to 1 and every frame is explained as that mix; its first and last frames come
  from the line.
* **Fades**: runs of flat frames (luma standard deviation under ``flat_std``) joined with the
  cuts and dissolves that touch them into one ``fade`` transition.

The result is a :class:`~pipelines.reel.shots.ShotList` (shots between the transitions; a
dissolve's boundary is its middle frame, a fade's the first frame after the black).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from pipelines.media import MediaError, MediaNotFoundError
from pipelines.media._container import open_input
from pipelines.media.probe import VideoStreamInfo, probe

from .errors import ReelInputError, ReelNotFoundError
from .shots import DEFAULT_START_TIMECODE, ShotList, Transition, TransitionKind

Thumb = NDArray[np.float32]
FLAT_WIDTH = 256
"""Width of the grey picture whose spread of luma says whether a frame is flat."""


@dataclass(frozen=True)
class DetectorSettings:
    """Thresholds of :func:`detect_shots` (differences on the 0-255 scale of RGB pixels)."""

    width: int = 64
    """Width of the analysis thumbnail (height follows the frame's aspect)."""
    cut_threshold: float = 10.0
    cut_peak_ratio: float = 2.5
    cut_window: int = 5
    cut_busy_ratio: float = 1.3
    """A cut's difference must also exceed the busier side's largest by this factor."""
    dissolve_scales: tuple[int, ...] = (2, 4, 8, 16)
    dissolve_threshold: float = 9.0
    """Smallest difference ``D_k`` between the two ends of a dissolve window."""
    dissolve_linearity: float = 0.22
    """Largest ``R_k / D_k``: how far the middle frame may be from the ends' average."""
    dissolve_fit: float = 0.25
    """Largest mean residual of a frame as a mix of the anchors, relative to their difference."""
    min_dissolve: int = 3
    flat_std: float = 6.0
    """A frame whose luma varies less than this is flat (black, or one colour)."""
    min_shot: int = 3
    """Cuts closer than this to another transition are dropped (flashes)."""

    @property
    def max_scale(self) -> int:
        return max(self.dissolve_scales)


@dataclass(frozen=True)
class _Event:
    kind: TransitionKind
    start: int
    end: int  # exclusive

    @property
    def middle(self) -> int:
        return (self.start + self.end) // 2


Progress = Callable[[int, int], None]
STABILITY_REACH = 4


def detect_shots(path: str | os.PathLike[str], *, settings: DetectorSettings | None = None,
                 start_timecode: str | None = None, progress: Progress | None = None
                 ) -> ShotList:
    """The shots of the reel at ``path``, found from its pixels.

    ``start_timecode`` overrides the reel's own (the probe's, else 00:00:00:00).
    ``progress(frames_done, frame_count)`` is called every 25 frames. A file that is not
    usable video is a :class:`~pipelines.reel.errors.ReelInputError` naming the cause.
    """
    try:
        info = probe(path, require_video=True)
    except MediaNotFoundError as exc:
        raise ReelNotFoundError(f"reel {exc.path}: {exc.reason}") from exc
    except MediaError as exc:
        raise ReelInputError(f"reel {exc.path}: {exc.reason}") from exc
    video = info.require_video()
    if video.variable_frame_rate:
        raise ReelInputError(f"reel {info.path}: variable frame rate; conform it to a constant "
                             "rate before detecting shots (frames must be countable)")
    detector = ShotDetector(settings)
    count = 0
    for thumb, luma_std in _thumbnails(info.path, video, detector.settings.width):
        detector.push(thumb, luma_std)
        count += 1
        if progress is not None and count % 25 == 0:
            progress(count, video.frame_count)
    if count != video.frame_count:
        raise ReelInputError(f"reel {info.path}: decoded {count} frames, the stream holds "
                             f"{video.frame_count}")
    transitions = detector.finish()
    tc = start_timecode or info.timecode or DEFAULT_START_TIMECODE
    return ShotList.from_transitions(transitions, count, video.frame_rate,
                                     start_timecode=tc, source=info.path.name)


def _thumbnails(path: os.PathLike[str], video: VideoStreamInfo, width: int
                ) -> Iterator[tuple[Thumb, float]]:
    """(RGB thumbnail, luma standard deviation at ``FLAT_WIDTH`` pixels wide) per frame.

    Flatness is measured on a larger, grey picture: a fine texture (a cellular automaton,
    film grain on grey) averages out to a flat small thumbnail but is not black.
    """
    height = max(2, round(width * video.height / video.width / 2) * 2)
    flat_w = min(FLAT_WIDTH, video.width)
    flat_h = max(2, round(flat_w * video.height / video.width / 2) * 2)
    reformatter = VideoReformatter()
    grey = VideoReformatter()
    try:
        with open_input(path) as container:
            stream = container.streams[video.index]
            if not isinstance(stream, av.video.stream.VideoStream):
                raise ReelInputError(f"reel {path}: the video stream changed since the probe")
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                small = reformatter.reformat(frame, width=width, height=height,
                                             format="rgb24", interpolation="AREA")
                luma = grey.reformat(frame, width=flat_w, height=flat_h, format="gray",
                                     interpolation="AREA").to_ndarray()
                yield small.to_ndarray().astype(np.float32), float(luma.std())
    except av.FFmpegError as exc:
        raise ReelInputError(f"reel {path}: decoding failed ({exc})") from exc
    except MediaError as exc:
        raise ReelInputError(f"reel {exc.path}: {exc.reason}") from exc


class ShotDetector:
    """The streaming detector: :meth:`push` each frame's thumbnail, then :meth:`finish`.

    Holds at most ``ring`` thumbnails; decisions for frame ``t`` are taken once frame
    ``t + delay`` has arrived.
    """

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        settings = settings or DetectorSettings()
        self.settings = settings
        k = settings.max_scale
        self.delay = k + settings.cut_window + 1
        self.ring_size = 8 * k + self.delay + 4
        self._ring: deque[tuple[int, Thumb]] = deque(maxlen=self.ring_size)
        self._n = 0
        # per-frame numbers, for the frames still undecided only (bounded by the delay)
        self._d1: dict[int, float] = {}
        self._flat: dict[int, bool] = {}
        self._cand: dict[int, int] = {}  # frame -> largest scale at which it is a candidate
        self._events: list[_Event] = []
        self._flat_runs: list[tuple[int, int]] = []
        self._flat_open: int | None = None
        self._run: tuple[int, int, int] | None = None  # candidate run (first, last, scale)
        self._cuts: set[int] = set()
        self._decided = 0

    # ------------------------------------------------------------------ input

    def push(self, thumb: Thumb, luma_std: float | None = None) -> None:
        """The next frame's thumbnail; ``luma_std``, its flatness measured on a larger
        picture (default: on the thumbnail)."""
        t = self._n
        self._n += 1
        self._ring.append((t, thumb))
        if luma_std is None:
            luma_std = float((thumb @ np.array([0.299, 0.587, 0.114], np.float32)).std())
        self._flat[t] = luma_std < self.settings.flat_std
        if t > 0:
            self._d1[t] = float(np.abs(thumb - self._thumb(t - 1)).mean())
        for k in self.settings.dissolve_scales:
            c = t - k
            if c - k >= 0:
                self._score_dissolve(c, k)
        while self._decided <= t - self.delay:
            self._decide(self._decided)
            self._decided += 1

    def finish(self) -> list[Transition]:
        """Decide the last frames and return the transitions, in reel order."""
        while self._decided < self._n:
            self._decide(self._decided)
            self._decided += 1
        self._close_run()
        if self._flat_open is not None:
            self._flat_runs.append((self._flat_open, self._n))
            self._flat_open = None
        return self._transitions()

    # ------------------------------------------------------------------ scores

    def _thumb(self, t: int) -> Thumb:
        first = self._ring[0][0]
        found, thumb = self._ring[t - first]
        assert found == t
        return thumb

    def _has(self, t: int) -> bool:
        return bool(self._ring) and self._ring[0][0] <= t <= self._ring[-1][0]

    def _score_dissolve(self, c: int, k: int) -> None:
        a, m, b = self._thumb(c - k), self._thumb(c), self._thumb(c + k)
        d = float(np.abs(b - a).mean())
        if d < self.settings.dissolve_threshold:
            return
        r = float(np.abs(m - (a + b) * 0.5).mean())
        if r <= self.settings.dissolve_linearity * d:
            self._cand[c] = max(self._cand.get(c, 0), k)

    def _is_cut(self, t: int) -> bool:
        s = self.settings
        d = self._d1.get(t, 0.0)
        if d < s.cut_threshold:
            return False
        before = [self._d1.get(u, 0.0) for u in range(max(1, t - s.cut_window), t)]
        after = [self._d1.get(u, 0.0) for u in range(t + 1, min(self._n, t + s.cut_window + 1))]
        calm = min(max(before, default=0.0), max(after, default=0.0))
        busy = max(max(before, default=0.0), max(after, default=0.0))
        # a peak over the calmer side (a busy shot may cut to a still one) and the largest
        # difference around (a burst of motion in one shot is not a cut)
        return d >= s.cut_peak_ratio * calm and d >= s.cut_busy_ratio * busy

    # ------------------------------------------------------------------ decisions

    def _decide(self, t: int) -> None:
        if self._is_cut(t):
            self._cuts.add(t)
            self._events.append(_Event(TransitionKind.CUT, t, t))
        flat = self._flat.pop(t)
        if flat and self._flat_open is None:
            self._flat_open = t
        elif not flat and self._flat_open is not None:
            self._flat_runs.append((self._flat_open, t))
            self._flat_open = None
        k = self._cand.pop(t, 0)
        if k:
            if self._run is not None and t == self._run[1] + 1:
                self._run = (self._run[0], t, max(self._run[2], k))
            else:
                self._close_run()
                self._run = (t, t, k)
        elif self._run is not None and t > self._run[1] + 1:
            self._close_run()
        self._d1.pop(t - self.settings.cut_window - 1, None)

    def _close_run(self) -> None:
        if self._run is None:
            return
        first, last, k = self._run
        self._run = None
        event = self._measure_dissolve(first, last, k)
        if event is not None:
            self._events.append(event)

    def _measure_dissolve(self, first: int, last: int, k: int) -> _Event | None:
        """The dissolve around candidate frames ``first .. last`` (found at scales up to
        ``k``), or ``None`` if they are not one.

        The anchors (the two pure frames the dissolve mixes) lie outside the run, at most
        ``k`` frames out; nearer ones are tried when the farther ones fail, since another
        transition (the black of a fade, a cut) may lie within ``k`` frames.
        """
        newest = self._n - 1
        for reach in sorted({k, max(1, k // 2), 2, 1}, reverse=True):
            lo, hi = max(0, first - reach), min(newest, last + reach)
            if lo >= first or hi <= last:
                continue
            if not (self._has(lo) and self._has(hi)):
                continue  # longer than the ring: a slow change, not a dissolve we measure
            if any(self._cut_at(c) for c in range(lo + 1, hi + 1)):
                continue
            event = self._fit_dissolve(lo, hi)
            if event is not None and self._stable(event, lo, hi):
                return event
        return None

    def _stable(self, event: _Event, lo: int, hi: int) -> bool:
        """A dissolve stays put when its anchors move further out; steady camera motion
        (a zoom, a pan) looks like a dissolve over any short window but the fitted span
        grows with the window. Anchors move out by up to ``STABILITY_REACH`` frames, never
        across a cut or into flat frames (the black of a fade); a span that cannot move out
        on either side (cuts or the reel's ends right around it) is refused."""
        new_lo, new_hi = lo, hi
        while new_lo > 0 and lo - new_lo < STABILITY_REACH and self._has(new_lo - 1) and \
                not self._cut_at(new_lo) and not self._is_flat(new_lo - 1):
            new_lo -= 1
        while hi - new_hi > -STABILITY_REACH and self._has(new_hi + 1) and \
                not self._cut_at(new_hi + 1) and not self._is_flat(new_hi + 1):
            new_hi += 1
        if lo - new_lo < STABILITY_REACH and hi - new_hi > -STABILITY_REACH and \
                not (self._is_flat(new_lo - 1) or self._is_flat(new_hi + 1)):
            # boxed in by cuts or the reel's ends on both sides: a change that fills a
            # whole short shot is that shot's own motion, not a dissolve between two
            return False
        if (new_lo, new_hi) == (lo, hi):
            return True
        wider = self._fit_dissolve(new_lo, new_hi)
        return wider is not None and abs(wider.start - event.start) <= 2 and \
            abs(wider.end - event.end) <= 2

    def _is_flat(self, t: int) -> bool:
        if t in self._flat:
            return self._flat[t]
        return any(a <= t < b for a, b in self._flat_runs[-4:]) or \
            (self._flat_open is not None and t >= self._flat_open)

    def _cut_at(self, t: int) -> bool:
        return t in self._cuts if t < self._decided else self._is_cut(t)

    def _fit_dissolve(self, lo: int, hi: int) -> _Event | None:
        """Fit each frame's mix ``alpha`` of anchors ``lo`` and ``hi``: a dissolve if alpha
        rises in a straight line and every frame is that mix."""
        s = self.settings
        a, b = self._thumb(lo), self._thumb(hi)
        diff = b - a
        norm = float((diff * diff).sum())
        scale = float(np.abs(diff).mean())
        if norm <= 0 or scale < s.dissolve_threshold:
            return None
        ts = np.arange(lo, hi + 1)
        alpha = np.array([float(((self._thumb(int(t)) - a) * diff).sum()) / norm for t in ts])
        ramp = (alpha > 0.1) & (alpha < 0.9)
        if ramp.sum() < 2:
            return None
        slope, intercept = np.polyfit(ts[ramp], alpha[ramp], 1)
        if slope <= 0:
            return None
        # the straight line must explain alpha (a dissolve is linear in time)
        if float(np.abs(slope * ts[ramp] + intercept - alpha[ramp]).max()) > 0.15:
            return None
        start = round(float(-intercept / slope)) + 1  # alpha(start - 1) = 0
        end = round(float((1 - intercept) / slope))  # alpha(end) = 1
        start, end = max(start, lo + 1), min(end, hi)
        if end - start < s.min_dissolve:
            return None
        # every frame must be the mix its alpha says (a zoom or a pan is not)
        for t in range(lo, hi + 1):
            al = float(np.clip(alpha[t - lo], 0.0, 1.0))
            residual = float(np.abs(self._thumb(t) - (a + al * diff)).mean())
            if residual > s.dissolve_fit * scale:
                return None
        return _Event(TransitionKind.DISSOLVE, int(start), int(end))

    # ------------------------------------------------------------------ merging

    def _transitions(self) -> list[Transition]:
        n = self._n
        events = sorted(self._events, key=lambda e: (e.start, e.end))
        merged: list[_Event] = []
        for e in events:  # overlapping dissolves found at several places are one
            if merged and e.kind is TransitionKind.DISSOLVE and \
                    merged[-1].kind is TransitionKind.DISSOLVE and e.start <= merged[-1].end:
                last = merged.pop()
                e = _Event(TransitionKind.DISSOLVE, last.start, max(last.end, e.end))
            merged.append(e)
        used: set[int] = set()
        out: list[Transition] = []
        for fs, fe in self._flat_runs:
            start, end, boundary = fs, fe, fe
            for i, e in enumerate(merged):
                touches_out = abs(e.end - fs) <= 2 or (e.start <= fs <= e.end)
                touches_in = abs(e.start - fe) <= 2 or (e.start <= fe <= e.end)
                if touches_out or touches_in:
                    used.add(i)
                    start, end = min(start, e.start), max(end, e.end)
                if touches_in and e.kind is TransitionKind.DISSOLVE and e.start >= fs:
                    # the fade-in's first frames are dark enough to count as flat: the shot
                    # begins where the fade-in does
                    boundary = min(boundary, max(e.start, fs + 1))
            if fs == 0 and fe == n:
                continue  # a reel that is all black has one shot
            if fs == 0:
                out.append(Transition(TransitionKind.FADE, 0, 0, end))
            elif fe == n:
                out.append(Transition(TransitionKind.FADE, n, start, n))
            else:
                out.append(Transition(TransitionKind.FADE, boundary, start, end))
        for i, e in enumerate(merged):
            if i in used:
                continue
            if e.kind is TransitionKind.CUT:
                if 0 < e.start < n:
                    out.append(Transition.cut(e.start))
            else:
                boundary = e.middle
                if 0 < boundary < n:
                    out.append(Transition(TransitionKind.DISSOLVE, boundary, e.start, e.end))
        out.sort(key=lambda t: t.boundary)
        return _drop_flashes(out, self.settings.min_shot, n)


def _drop_flashes(transitions: Iterable[Transition], min_shot: int, n: int
                  ) -> list[Transition]:
    """A cut within ``min_shot`` frames of the previous transition is a flash, not a shot."""
    kept: list[Transition] = []
    for t in transitions:
        if kept and t.kind is TransitionKind.CUT and t.boundary - kept[-1].end < min_shot:
            continue
        if kept and kept[-1].kind is TransitionKind.CUT and \
                t.kind is not TransitionKind.CUT and t.start - kept[-1].boundary < min_shot:
            kept.pop()
        kept.append(t)
    return kept

