"""A two-shot reel rendered in French, for the review tests: shot 0 is the demo performer
(GRID bbaf2n, consented) speaking another speaker's line, shot 1 a test pattern (no face,
copied). One 45-frame lip-sync render and the conform: tens of seconds on two cores, so
the tests that need it rendered share one render per process (``restored_small_reel``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from consent.keys import PrivateKey
from pipelines.media.audio import load_audio, resample
from studio.reels.job import ReelOutcome, ReelRelease
from studio.reels.store import Reel
from studio.services import reels
from studio.services.context import AppContext
from studio.settings import Settings
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


def m_and_e(path: Path) -> Path:
    """A quiet 220 Hz tone the length of the reel (mono, 16 kHz): music and effects."""
    t = np.arange(int(FRAMES / 25 * RATE)) / RATE
    return gen.write_audio(path, (0.05 * np.sin(2 * np.pi * 220 * t))[None].astype(
        np.float32), RATE)


# -- one render per process, a pristine copy per test -------------------------------------


@dataclass(frozen=True)
class SmallReel:
    """The small reel rendered in a data folder of its own (``settings``), with the
    operator's inputs (the reel, ANA's stem, the M&E) beside it under the same root."""

    settings: Settings
    reel: Reel
    stem: Path
    done: ReelOutcome
    #: The demo performer's key: under the held grant, the tests sign approvals with it.
    key: PrivateKey | None
    m_and_e: Path | None


@dataclass(frozen=True)
class _Pristine:
    work: Path  # where tests see the folder; restored before each test
    pristine: Path
    reel: SmallReel


#: Rendered versions by kind, one per test process (an xdist worker has its own).
_RENDERED: dict[str, _Pristine] = {}
KINDS = ("with-m-and-e", "held")


def _render_pristine(kind: str, base: Path, root: Path) -> _Pristine:
    from studio.bootstrap import open_registry
    from tests.render.test_approval_render import _held_grant

    work = root / "work"
    data = work / "studio-data"
    shutil.copytree(base, data)
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    try:
        # "held": the demo grant replaced by one that requires the performer's approval of
        # every deliverable; "with-m-and-e": the demo grant, an M&E delivered beside the mix.
        key = _held_grant(registry) if kind == "held" else None
        ctx = AppContext(settings, registry)
        reel, stem = import_small_reel(ctx, work)
        me = m_and_e(work / "me.wav") if kind == "with-m-and-e" else None
        release = replace(RELEASE, m_and_e=me)
        done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release, {"ANA": stem}))
    finally:
        registry.store.dispose()
    pristine = root / "pristine"
    shutil.copytree(work, pristine, symlinks=True)
    return _Pristine(work, pristine, SmallReel(settings, reel, stem, done, key, me))


def restored_small_reel(kind: str, base: Path, factory: pytest.TempPathFactory) -> SmallReel:
    """The small reel rendered once per process in ``kind`` ("with-m-and-e" or "held"),
    from ``base`` (a seeded data folder with the demo shot's analysis kept), and put back
    as rendered before each test: the render (several seconds) is shared, the state is not.

    The folder is restored at the path it was rendered in, not copied elsewhere: the reel
    store, the jobs' records and the deliverables' list name their files by absolute path,
    so a copy at another path would point its tests at the shared files. Tests in one
    process run one at a time, so one path per process is enough (each xdist worker has its
    own temporary root); tests sharing a kind carry one ``xdist_group`` so that it is
    rendered once in the suite."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} not in {KINDS}")
    state = _RENDERED.get(kind)
    if state is None:
        state = _RENDERED[kind] = _render_pristine(kind, base, factory.mktemp(f"reel-{kind}"))
    if state.work.exists():
        shutil.rmtree(state.work)
    shutil.copytree(state.pristine, state.work, symlinks=True)
    return state.reel
