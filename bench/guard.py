"""The edit guard and the continuous identity check: their cost as a share of render time, and
the false split rate on the unedited GRID clips (issue 12; goals ≤ 3 % and 0).

Run from the repository root::

    .venv/bin/python bench/guard.py            # GRID 360×288 and 720p, 75 frames each
    .venv/bin/python bench/guard.py --long     # also 720p × 4 (300 frames): looped (a cut
                                               # at each loop) and ping-pong (one track)

**Cost.** Whole studio renders (ingest → publish) of GRID bbaf2n (the demo performer) with
GRID brbk7n's dub, against a data folder seeded like ``make run``. Instrumented in-process:

* *guard*: time inside ``EditGuard.apply`` minus the backend's own rendering and the backend's
  lazily generated edits (what the old merger also did): the permit lookups, the face masks,
  the scratch copy and the masked copy back;
* *continuous identity*: the embeddings the trace adds over the previous sampler (one every
  half second but ≤ 10 per track, thinned as a track grows, no end-of-run sample), counted on
  the same shot, times the measured mean embedding time, plus the time to build the traces.
  The trace samples every ``gap - 1`` frames (24 at 25 fps with the 1 s gap) for as long as
  the track lasts, and embeds each run's last frame.

**False splits.** Each of the six GRID clips (one speaker each, no edit) is analysed as a render
does and traced against templates of all six speakers (8 frames of each clip, as enrolment
keeps them): a false split is a speaker's track whose frames are not one verified segment
from its first sampled frame to its last frame; a false accept, a track traced as someone else.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

OUT = ROOT / "bench" / "out" / "guard.json"
GRID = ROOT / "assets" / "media" / "grid"
CLIPS = ("bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "id2_vcd_swwp2s")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def instrumented(stats: dict[str, float]) -> Iterator[None]:
    """Time the guard's own work and count/time every identity embedding."""
    import studio.identity as identity
    from pipelines.edits.guard import EditGuard
    from pipelines.faces.embedding import DlibEmbedder

    apply, due, embed, trace = (EditGuard.apply, EditGuard._due, DlibEmbedder.embed,
                                identity.identity_trace)

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                stats[key] = stats.get(key, 0.0) + time.perf_counter() - t
                stats[key + "_n"] = stats.get(key + "_n", 0) + 1
        return wrapper

    def guarded_apply(self: Any, index: int, rgb: Any) -> None:
        if not getattr(self, "_bench", False):
            self.render = timed("backend_render_s", self.render)
            self._bench = True
        timed("guard_apply_s", apply)(self, index, rgb)

    EditGuard.apply = guarded_apply  # type: ignore[method-assign]
    EditGuard._due = timed("edits_due_s", due)  # type: ignore[method-assign]
    DlibEmbedder.embed = timed("embed_s", embed)  # type: ignore[method-assign]
    identity.identity_trace = timed("trace_s", trace)
    try:
        yield
    finally:
        EditGuard.apply = apply  # type: ignore[method-assign]
        EditGuard._due = due  # type: ignore[method-assign]
        DlibEmbedder.embed = embed  # type: ignore[method-assign]
        identity.identity_trace = trace


def old_sampler_embeddings(shot: Path) -> int:
    """How many embeddings the previous sampler took on ``shot`` (the baseline)."""
    from pipelines.faces.embedding import DlibEmbedder
    from pipelines.faces.scan import scan_video
    from pipelines.media import VideoReader, probe

    count = [0]
    embedder = DlibEmbedder()
    inner = embedder.embed

    def counting(rgb: Any, obs: Any) -> Any:
        count[0] += 1
        return inner(rgb, obs)

    embedder.embed = counting  # type: ignore[method-assign,assignment]
    video = probe(shot).video
    assert video is not None
    every = max(5, round(float(video.frame_rate) / 2))
    with VideoReader(shot, on_vfr="conform") as reader:
        scan_video((f.rgb for f in reader), embedder, max_faces=8, sample_every=every,
                   max_samples=10)
    return count[0]


def make_pingpong(folder: Path, loops: int) -> tuple[Path, Path]:
    """bbaf2n at 720p played forward, backward, forward …: one face track with no cut, the
    case where the trace takes the most embeddings over the old capped sampler."""
    import numpy as np

    from bench.faces import decode, to_720p
    from bench.render import make_inputs
    from pipelines.media import VideoWriter
    from pipelines.media.probe import VideoStreamInfo

    frames = [to_720p(f) for f in decode(GRID / "bbaf2n.mpg")]
    _, dub = make_inputs(folder, loops)
    shot = folder / f"pingpong{loops}.mp4"
    with VideoWriter(shot, VideoStreamInfo.new(1280, 720, 25), crf=16,
                     preset="veryfast") as writer:
        for k in range(loops):
            for f in (frames if k % 2 == 0 else frames[::-1]):
                writer.write(np.ascontiguousarray(f))
    return shot, dub


def render_cost(data: Path, shot: Path, dub: Path, label: str) -> dict[str, Any]:
    from studio.bootstrap import open_registry
    from studio.render import RenderJob, RenderRequest
    from studio.settings import Settings

    settings = Settings.from_env(data)
    registry = open_registry(settings)
    stats: dict[str, float] = {}
    request = RenderRequest(operation="lipsync", source=shot, dub=dub, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator="Bench Operator", dub_tolerance_s=1.0)
    with instrumented(stats):
        started = time.perf_counter()
        outcome = RenderJob(request, settings, registry).run()
        wall = time.perf_counter() - started
    registry.store.dispose()
    guard_s = (stats.get("guard_apply_s", 0.0) - stats.get("backend_render_s", 0.0)
               - stats.get("edits_due_s", 0.0))
    embeds = int(stats.get("embed_s_n", 0))
    mean_embed = stats.get("embed_s", 0.0) / max(embeds, 1)
    baseline = old_sampler_embeddings(shot)
    identity_s = max(embeds - baseline, 0) * mean_embed + stats.get("trace_s", 0.0)
    return {"shot": label, "frames": outcome.frames, "render_s": wall,
            "guard_s": guard_s, "guard_share": guard_s / wall,
            "embeddings": embeds, "baseline_embeddings": baseline,
            "mean_embed_ms": mean_embed * 1000, "trace_ms": stats.get("trace_s", 0.0) * 1000,
            "identity_s": identity_s, "identity_share": identity_s / wall,
            "edited_frames": outcome.guard.get("applied", 0),
            "dropped": outcome.guard.get("dropped_total", 0)}


def false_splits() -> list[dict[str, Any]]:
    import av

    from consent.templates import Template
    from pipelines.faces.analysis import analyse_shot
    from pipelines.faces.embedding import DlibEmbedder
    from pipelines.faces.scan import faces_in_image
    from studio.identity import identity_trace, track_label

    embedder = DlibEmbedder()
    templates: dict[str, list[Template]] = {}
    for clip in CLIPS:
        with av.open(str(GRID / f"{clip}.mpg")) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        tpls = []
        for i in range(0, len(frames), 10)[:8]:
            faces = faces_in_image(frames[i])
            if len(faces) == 1:
                tpls.append(Template(f"{clip}-{i}", clip, embedder.name,
                                     embedder.embed(frames[i], faces[0]), "0" * 64, "0" * 64,
                                     {}, datetime.now(UTC)))
        templates[clip] = tpls
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        for clip in CLIPS:
            shot = analyse_shot(GRID / f"{clip}.mpg", Path(tmp) / clip, embedder, max_faces=8,
                                sample_every=24, max_samples=None, end_samples=True,
                                on_vfr="conform")  # as a render samples with a 1 s gap
            for track in shot.tracks:
                trace = identity_trace(track, track_label(track), templates, embedder,
                                       max_gap=25)
                first = min(s.frame for s in trace.samples) if trace.samples else -1
                whole = trace.segments == ((first, track.last_frame),)
                rows.append({"clip": clip, "track": track_label(track),
                             "frames": track.frame_count, "samples": len(trace.samples),
                             "performer": trace.performer_id,
                             "segments": [list(s) for s in trace.segments],
                             "false_split": trace.performer_id == clip and not whole,
                             "false_accept": trace.performer_id not in (None, clip)})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long", action="store_true", help="also a 300-frame 720p shot")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from bench._floor import Machine
    from bench.render import make_inputs
    from studio.bootstrap import SeedReport, open_registry, seed_demo
    from studio.settings import Settings

    # The guard's figures are shares of the same render's time (their own floor); the
    # machine and load are kept so that runs compare.
    machine = Machine()
    costs = []
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        folder = Path(tmp)
        data = folder / "studio-data"
        registry = open_registry(Settings.from_env(data))
        seed_demo(registry, SeedReport())
        registry.store.dispose()
        log("rendering GRID bbaf2n (360×288, 75 frames) …")
        costs.append(render_cost(data, GRID / "bbaf2n.mpg", GRID / "brbk7n.mpg",
                                 "GRID 360x288 x1"))
        for loops in ([1, 4] if args.long else [1]):
            log(f"making and rendering a {75 * loops}-frame 720p shot …")
            shot, dub = make_inputs(folder, loops)
            costs.append(render_cost(data, shot, dub, f"720p x{loops}"))
        if args.long:
            log("making and rendering a 300-frame 720p ping-pong shot (one track) …")
            shot, dub = make_pingpong(folder, 4)
            costs.append(render_cost(data, shot, dub, "720p ping-pong x4"))
    log("tracing the six unedited GRID clips …")
    splits = false_splits()
    print("| shot | frames | render s | guard ms | guard share | embeddings (before) | "
          "identity ms | identity share | edited frames |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in costs:
        print(f"| {c['shot']} | {c['frames']} | {c['render_s']:.1f} | {c['guard_s'] * 1000:.0f} "
              f"| {c['guard_share']:.2%} | {c['embeddings']} ({c['baseline_embeddings']}) | "
              f"{c['identity_s'] * 1000:.0f} | {c['identity_share']:.2%} | "
              f"{c['edited_frames']} |")
    speaker_tracks = [r for r in splits if r["performer"] == r["clip"]]
    false = sum(r["false_split"] for r in splits)
    accepts = sum(r["false_accept"] for r in splits)
    print(f"\nfalse splits: {false} of {len(speaker_tracks)} speaker tracks "
          f"({false / max(len(speaker_tracks), 1):.0%}); false accepts: {accepts} of "
          f"{len(splits)} tracks")
    for r in splits:
        print(f"  {r['clip']} {r['track']}: {r['frames']} frames, {r['samples']} samples, "
              f"traced as {r['performer']}, segments {r['segments']}")
    print(machine.finish().line())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine.to_json(), "costs": costs,
                                    "splits": splits}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
