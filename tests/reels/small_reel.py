"""A two-shot reel rendered in French, for the review tests: shot 0 is the demo performer
(GRID bbaf2n, consented) speaking another speaker's line, shot 1 a test pattern (no face,
copied). One 45-frame lip-sync render and the conform: tens of seconds on two cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.media.audio import load_audio, resample
from studio.reels.job import ReelOutcome, ReelRelease
from studio.reels.store import Reel
from studio.services import reels
from studio.services.context import AppContext
from tests.media import mediagen as gen
from tests.reel import reelgen

GRID = gen.ASSETS / "grid"
SEGMENTS = (reelgen.Segment("grid:bbaf2n", 0, 45), reelgen.Segment("lavfi:testsrc2", 0, 20))
FRAMES = 65
RATE = 16000
RELEASE = ReelRelease("fr", "FR", "Test Operator", source_language="en")


def ana_stem(path: Path) -> Path:
    """ANA's French line (brbk7n's voice, 1.2 s from 0.2 s: inside shot 0), reel-long."""
    audio = resample(load_audio(GRID / "brbk7n.mpg"), RATE)
    speech = audio.samples.mean(axis=0).astype(np.float32)[int(0.49 * RATE):
                                                           int(1.69 * RATE)]
    track = np.zeros((1, int(FRAMES / 25 * RATE)), np.float32)
    track[0, int(0.2 * RATE):int(0.2 * RATE) + speech.size] = speech
    return gen.write_audio(path, track, RATE)


def import_small_reel(ctx: AppContext, folder: Path) -> tuple[Reel, Path]:
    """The reel imported (shots detected) with ANA cast as the demo performer; ANA's stem."""
    source = reelgen.build_reel(folder / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(source, "demo-dub", detect=True))
    assert [(s.start, s.end) for s in reel.shots] == [(0, 45), (45, 65)]
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    return reel, ana_stem(folder / "ana.fr.wav")


def render_small_reel(ctx: AppContext, reel: Reel, stem: Path) -> ReelOutcome:
    return reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, {"ANA": stem}))
