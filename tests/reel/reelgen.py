"""Test reels with known shots, built from the GRID clips (and lavfi sources for shots
without faces): the hand-labelled ground truth of shot detection, EDL import and conform.

A reel is a list of :class:`Segment` s: where each shot's pictures come from and how it
begins (cut, dissolve of ``n`` frames, fade out/black/in). :func:`build_reel` mixes the
frames (a dissolve's frame ``i`` of ``n`` is ``(1 - a) A + a B`` with ``a = (i + 1) / (n + 1)``;
a fade scales to black the same way) and streams them to the writer; :func:`truth` gives the
transitions the detector should find, in the conventions of ``pipelines.reel.shots``.

Sources (the ``source`` string of a segment):

- ``grid:NAME``: a GRID clip (``bbaf2n`` ...), scaled to the reel size;
- ``cu:NAME``: a close-up of the same clip (the face region, enlarged);
- ``flip:NAME``: the clip mirrored;
- ``two:NAME+NAME[+NAME…]``: a two-person (or n-person) shot, the centre strips of the
  clips side by side;
- ``lavfi:GRAPH``: an FFmpeg test source (``testsrc2``, ``mandelbrot``, ``cellauto``...):
  no face.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from pipelines.reel.shots import ShotList, Transition, TransitionKind
from tests.media import mediagen as gen

GRID_DIR = gen.ASSETS / "grid"
GRID_NAMES = tuple(p.stem for p in gen.GRID)
GRID_FRAMES = 75

RGB = gen.RGB


@dataclass(frozen=True)
class Segment:
    """One shot: ``length`` frames of ``source`` from its frame ``src_in``.

    ``transition`` is how it begins: ``("cut", 0)``, ``("dissolve", n)`` (the ``n`` frames
    before this shot's first frame mix into it: the previous shot's last ``n`` frames),
    or ``("fade", out, black, in)`` (the previous shot's last ``out`` frames fade to black,
    ``black`` black frames, this shot's first ``in`` frames fade in). The first segment may
    start with ``("fade", 0, black, in)``; ``tail_fade`` on the last one fades the reel out.
    """

    source: str
    src_in: int
    length: int
    transition: tuple[str, ...] = ("cut",)
    tail_fade: int = 0


def _grid_frames(name: str, size: tuple[int, int], start: int, mode: str) -> Iterator[RGB]:
    w, h = size
    reformatter = VideoReformatter()
    with av.open(str(GRID_DIR / f"{name}.mpg")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if mode == "cu":  # the face and shoulders region of a GRID frame, enlarged
                rgb = frame.to_ndarray(format="rgb24")[24:208, 90:320]
                img = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                yield img.reformat(width=w, height=h, format="rgb24",
                                   interpolation="BICUBIC").to_ndarray()
                continue
            rgb = reformatter.reformat(
                frame, width=w, height=h, format="rgb24", src_colorspace=Colorspace.ITU601,
                src_color_range=ColorRange.MPEG, interpolation="BICUBIC").to_ndarray()
            yield np.ascontiguousarray(rgb[:, ::-1]) if mode == "flip" else rgb


def _lavfi_frames(graph: str, size: tuple[int, int], start: int) -> Iterator[RGB]:
    name, _, opts = graph.partition("=")
    spec = f"{name}={opts + ':' if opts else ''}size={size[0]}x{size[1]}:rate=25"
    with av.open(spec, format="lavfi") as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start:
                yield frame.to_ndarray(format="rgb24")


def source_frames(source: str, size: tuple[int, int], start: int) -> Iterator[RGB]:
    """The frames of ``source`` from its frame ``start``, at ``size``, one at a time."""
    kind, _, arg = source.partition(":")
    if kind in ("grid", "cu", "flip"):
        yield from _grid_frames(arg, size, start, kind)
    elif kind == "two":
        # n people side by side: each clip at its native aspect, 2/n of the reel's width
        # wide, and its centre strip (1/n of the reel) kept: two make GRID's centre halves.
        names = arg.split("+")
        n = len(names)
        wide = (2 * size[0] // n, size[1])
        edges = [size[0] * k // n for k in range(n + 1)]
        for frames in zip(*(_grid_frames(name, wide, start, "grid") for name in names),
                          strict=False):
            out = np.empty((size[1], size[0], 3), np.uint8)
            for k, frame in enumerate(frames):
                w = edges[k + 1] - edges[k]
                left = (wide[0] - w) // 2
                out[:, edges[k]:edges[k + 1]] = frame[:, left:left + w]
            yield out
    elif kind == "lavfi":
        yield from _lavfi_frames(arg, size, start)
    else:
        raise ValueError(f"unknown source {source!r}")


@dataclass(frozen=True)
class _Placed:
    segment: Segment
    start: int  # reel frame of the segment's first frame
    pre: int  # frames before start that it shows (dissolve / fade-in lead)
    post: int  # frames after its end that it shows (the next shot's dissolve)


def _place(segments: Sequence[Segment]) -> tuple[list[_Placed], list[Transition], int]:
    """Reel positions of the segments, and the ground-truth transitions."""
    placed: list[_Placed] = []
    truth: list[Transition] = []
    at = 0
    for i, seg in enumerate(segments):
        kind = seg.transition[0]
        pre = 0
        if kind == "dissolve":
            n = int(seg.transition[1])
            pre = n
            start = at
            # the dissolve's frames are the previous shot's last n frames, mixed with this
            # shot's n frames of lead-in; the boundary is the middle of the dissolve
            truth.append(Transition(TransitionKind.DISSOLVE, at - n + n // 2, at - n, at))
            start = at - n
            prev = placed[-1]
            placed[-1] = _Placed(prev.segment, prev.start, prev.pre, 0)
            placed.append(_Placed(seg, start, 0, 0))
            at = start + seg.length
            continue
        if kind == "fade":
            out_n, black, in_n = (int(x) for x in seg.transition[1:4])
            fade_start = at - out_n
            at += black
            truth.append(Transition(TransitionKind.FADE, at if i else 0, fade_start,
                                    at + in_n))
        elif i:
            truth.append(Transition.cut(at))
        placed.append(_Placed(seg, at, pre, 0))
        at += seg.length
    last = segments[-1]
    if last.tail_fade:
        truth.append(Transition(TransitionKind.FADE, at, at - last.tail_fade, at))
    return placed, truth, at


def reel_frames(segments: Sequence[Segment], size: tuple[int, int]) -> Iterator[RGB]:
    """The reel's frames, streamed: at most two sources are open at once."""
    placed, _, total = _place(segments)
    # frame r of the reel: which placed segments cover it, with what weight
    layers: list[tuple[int, int, float, float, int, int, int]] = []
    for i, p in enumerate(placed):
        seg = p.segment
        span_start = p.start
        span_end = p.start + seg.length
        kind = seg.transition[0]
        fade_in = int(seg.transition[3]) if kind == "fade" else 0
        nxt = placed[i + 1].segment if i + 1 < len(placed) else None
        mix_out = int(nxt.transition[1]) if nxt and nxt.transition[0] == "dissolve" else 0
        fade_out = int(nxt.transition[1]) if nxt and nxt.transition[0] == "fade" else 0
        if nxt is None:
            fade_out = seg.tail_fade
        layers.append((span_start, span_end, 0.0, 0.0, fade_in, fade_out, mix_out))
    iters: dict[int, Iterator[RGB]] = {}
    for r in range(total):
        acc = np.zeros((size[1], size[0], 3), np.float32)
        for i, p in enumerate(placed):
            s, e, _, _, fade_in, fade_out, mix_out = layers[i]
            mix_in = int(p.segment.transition[1]) if p.segment.transition[0] == "dissolve" else 0
            if not s <= r < e:
                continue
            if i not in iters:
                iters[i] = source_frames(p.segment.source, size, p.segment.src_in)
            frame = next(iters[i]).astype(np.float32)
            weight = 1.0
            if mix_in and r < s + mix_in:  # this shot fading up through the dissolve
                weight = (r - s + 1) / (mix_in + 1)
            elif mix_out and r >= e - mix_out:
                weight = 1 - (r - (e - mix_out) + 1) / (mix_out + 1)
            if fade_in and r < s + fade_in:
                weight *= (r - s + 1) / (fade_in + 1)
            if fade_out and r >= e - fade_out:
                weight *= 1 - (r - (e - fade_out) + 1) / (fade_out + 1)
            acc += weight * frame
        for i in [i for i in iters if layers[i][1] <= r + 1]:
            iters.pop(i).close()  # type: ignore[attr-defined]
        yield np.clip(acc + 0.5, 0, 255).astype(np.uint8)


def truth(segments: Sequence[Segment], rate: Fraction = Fraction(25),
          start_timecode: str = "00:00:00:00") -> ShotList:
    """The hand-labelled shot list of the reel ``segments`` make."""
    _, transitions, total = _place(segments)
    return ShotList.from_transitions(transitions, total, rate, start_timecode=start_timecode)


def build_reel(path: Path, segments: Sequence[Segment], *, size: tuple[int, int] = (360, 288),
               codec: str = "libx264", pix_fmt: str = "yuv420p", timecode: str | None = None,
               options: dict[str, str] | None = None, audio: bool = False) -> Path:
    """Write the reel (25 fps); ``audio`` adds a stereo tone as long as the reel."""
    total = _place(segments)[2]
    sound = (gen.tone(330, total / 25, 48000, 2), 48000) if audio else None
    return gen.write_video(path, reel_frames(segments, size), codec=codec, pix_fmt=pix_fmt,
                           timecode=timecode, options=options, audio=sound)


# --------------------------------------------------------------------------- fixed reels

#: The test reel: 14 shots, 9 cuts, 2 dissolves (8 and 14 frames), a fade through black,
#: a fade in from black at the head and a fade out at the tail; faces, close-ups, a
#: two-person shot and two shots without faces. Every GRID clip has 75 frames: src_in +
#: length (+ the next shot's dissolve frames) stays inside.
TEST_REEL: tuple[Segment, ...] = (
    Segment("grid:bbaf2n", 0, 30, ("fade", 0, 0, 8)),
    Segment("grid:brbk7n", 5, 28),
    Segment("cu:lbax4n", 10, 25),
    Segment("grid:lrwp9a", 20, 30, ("dissolve", 8)),
    Segment("two:bbaf2n+lbbc2a", 30, 30),
    Segment("lavfi:testsrc2", 0, 25),
    Segment("flip:id2_vcd_swwp2s", 0, 35, ("dissolve", 14)),
    Segment("cu:brbk7n", 40, 20),
    Segment("grid:lbbc2a", 0, 30, ("fade", 10, 6, 10)),
    Segment("lavfi:mandelbrot", 0, 30),
    Segment("grid:lbax4n", 30, 25),
    Segment("cu:bbaf2n", 5, 24),
    Segment("two:lrwp9a+brbk7n", 10, 30),
    Segment("grid:id2_vcd_swwp2s", 20, 40, tail_fade=10),
)


def random_reel(shots: int, seed: int = 17, lengths: tuple[int, int] = (24, 44)
                ) -> list[Segment]:
    """A reel of ``shots`` shots of ``lengths`` frames for the bench: mostly cuts, one
    dissolve in five, a fade through black in ten; faces, close-ups, mirrored and two-person
    shots, and one shot in eight without a face. Adjacent shots never show the same person,
    and every shot keeps at least 8 frames outside its transitions."""
    rng = random.Random(seed)
    faceless = ["lavfi:testsrc2", "lavfi:mandelbrot", "lavfi:cellauto", "lavfi:smptebars"]
    segments: list[Segment] = []
    prev_names: set[str] = set()
    for i in range(shots):
        kind_roll = rng.random()
        transition: tuple[str, ...] = ("cut",)
        if i and kind_roll < 0.2:
            transition = ("dissolve", str(rng.choice([6, 10, 14])))
        elif i and kind_roll < 0.3:
            transition = ("fade", str(rng.choice([0, 8])), str(rng.choice([2, 6])),
                          str(rng.choice([0, 8])))
        roll = rng.random()
        if roll < 0.125:
            source = rng.choice(faceless)
            names: set[str] = set()
        elif roll < 0.3:
            a, b = rng.sample([n for n in GRID_NAMES if n not in prev_names], 2)
            source, names = f"two:{a}+{b}", {a, b}
        else:
            name = rng.choice([n for n in GRID_NAMES if n not in prev_names])
            source, names = f"{rng.choice(['grid', 'cu', 'flip'])}:{name}", {name}
        length = rng.randint(*lengths)
        src_in = rng.randint(0, GRID_FRAMES - length)
        if segments and transition[0] != "cut":
            prev = segments[-1]
            candidate = Segment(source, src_in, length, transition)
            if prev.length - _lead(prev) - _tail(transition) < 8 or \
                    length - _lead(candidate) < 8:
                transition = ("cut",)  # keep a steady part in the middle of every shot
        segments.append(Segment(source, src_in, length, transition))
        prev_names = names
    return segments


def _lead(seg: Segment) -> int:
    """Frames at the start of ``seg`` that are part of its transition in."""
    kind = seg.transition[0]
    if kind == "dissolve":
        return int(seg.transition[1])
    if kind == "fade":
        return int(seg.transition[3])
    return 0


def _tail(transition: tuple[str, ...]) -> int:
    """Frames at the end of the previous shot that ``transition`` uses."""
    return int(transition[1]) if transition[0] in ("dissolve", "fade") else 0


# --------------------------------------------------------------------------- measuring


def decoded_frames(path: Path) -> Iterator[RGB]:
    """Every frame of ``path`` as RGB, decoded by PyAV directly (not the studio's reader)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def psnr(a: RGB, b: RGB) -> float:
    """PSNR in dB of two RGB frames; ``inf`` when identical."""
    if np.array_equal(a, b):
        return float("inf")
    diff = (a.astype(np.int64) - b).ravel()
    mse = float(diff @ diff) / diff.size  # exact: int64 sums do not overflow
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0 ** 2 / mse))


def shot_psnr(reference: Path, test: Path, shots: ShotList,
              offsets: dict[int, tuple[Path, int]] | None = None) -> dict[int, float]:
    """The lowest frame PSNR of each shot of ``test`` against ``reference``, streaming both;
    ``offsets`` maps a shot to another reference (a replacement file, whose frame 0 is the
    shot's first frame)."""
    worst: dict[int, float] = {}
    others = {i: decoded_frames(p) for i, (p, _) in (offsets or {}).items()}
    ref = decoded_frames(reference)
    for index, frame in enumerate(decoded_frames(test)):
        shot = shots.shot_at(index).index
        base = next(ref)
        if shot in others:
            base = next(others[shot])
        worst[shot] = min(worst.get(shot, float("inf")), psnr(base, frame))
    return worst


def replacement(source: Path, shots: ShotList, index: int, path: Path, *,
                codec: str = "libx264", pix_fmt: str = "yuv420p",
                options: dict[str, str] | None = None) -> Path:
    """A stand-in render of shot ``index``: the source's frames with a white box over the
    lower middle (where a mouth would be re-rendered), same size, rate and frame count."""
    shot = shots[index]

    def frames() -> Iterator[RGB]:
        for i, rgb in enumerate(decoded_frames(source)):
            if shot.start <= i < shot.end:
                out = rgb.copy()
                h, w = out.shape[:2]
                out[h // 2: h * 3 // 4, w // 3: w * 2 // 3] = 255
                yield out
            elif i >= shot.end:
                return
    return gen.write_video(path, frames(), codec=codec, pix_fmt=pix_fmt, options=options)


def plain_reencode(source: Path, path: Path, *, crf: int, preset: str) -> Path:
    """The codec's own bound: ``source`` decoded and encoded again by plain PyAV + libx264 at
    ``crf``/``preset`` (no studio code), to hold a re-encoding conform's PSNR against."""
    return gen.write_video(path, decoded_frames(source), options={"crf": str(crf),
                                                                   "preset": preset})
