"""Inputs swapped at the operator's path after ingest (hostile): the render runs on the bytes it
hashed in step 1, never on what the path holds later.

The operator's files may sit in a shared ingest or watch folder that others can write. The
attacker waits until the job has hashed the shot (or the dub) and puts another file at the
same path: a stranger's shot, so that the pipeline would warp the stranger's face at the
meshes tracked on the performer's (while the manifest names the performer's shot), or another
voice. The job copies every input into its private staging folder as it hashes it
(``studio.render.staging.stage_inputs``), so the output is rendered from the hashed bytes
and the manifest names exactly those.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from consent.registry import Registry
from pipelines.media import load_audio
from studio.errors import InputNotFoundError
from studio.identity import sha256_file
from studio.provenance.identity import trust_anchors
from studio.provenance.signing import read_manifest
from studio.render import RenderJob, RenderRequest, Stage
from studio.render.staging import stage_inputs
from studio.settings import Settings

from .conftest import DEMO_SHOT, GRID, OTHER_VOICE

#: Another GRID speaker, never enrolled (as in tests/consent_guard/shots.py).
STRANGER = GRID / "lbax4n.mpg"
#: A third voice, the attacker's dub.
ATTACKER_VOICE = GRID / "lbbc2a.mpg"


def _frames(path: Path) -> NDArray[np.float32]:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
                        ).astype(np.float32)


def _operator_files(tmp_path: Path) -> tuple[Path, Path]:
    """The shot and the dub in the operator's (shared) ingest folder."""
    ingest = tmp_path / "ingest"
    ingest.mkdir()
    shot, dub = ingest / "shot.mpg", ingest / "dub.mpg"
    shutil.copyfile(DEMO_SHOT, shot)
    shutil.copyfile(OTHER_VOICE, dub)
    return shot, dub


def _request(shot: Path, dub: Path) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=shot, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=dub)


def _swap(path: Path, replacement: Path, how: str) -> None:
    if how == "overwrite":  # the same file, rewritten in place (same inode)
        shutil.copyfile(replacement, path)
    else:  # another file renamed over the name (what a watch folder's writer does)
        aside = path.with_name(f".{path.name}.new")
        shutil.copyfile(replacement, aside)
        os.replace(aside, path)


def _manifest_hashes(settings: Settings, output: Path) -> dict[str, str | None]:
    report = read_manifest(output, trust_anchors_pem=trust_anchors(settings))
    assert str(report.state) == "Trusted"
    return {i.title: i.sha256 for i in report.ingredients}


@pytest.mark.parametrize(("point", "how"), [("ingested", "overwrite"), ("run", "replace")])
def test_a_shot_swapped_after_ingest_is_never_rendered(
        settings: Settings, registry: Registry, tmp_path: Path, point: str, how: str) -> None:
    shot, dub = _operator_files(tmp_path)
    performer_sha = sha256_file(shot)
    swapped: list[str] = []

    def attack(at: str) -> None:
        # Right after step 1 hashed the shot, or as step 4 starts (identified, authorised);
        # the performer's file is put back once rendered, so that the manifest's check of
        # its ingredients (step 6) would see the hashed bytes again.
        if at == point:
            _swap(shot, STRANGER, how)
            swapped.append(at)
        elif at == str(Stage.RECHECK) and swapped:
            _swap(shot, DEMO_SHOT, how)
            swapped.append(at)

    outcome = RenderJob(_request(shot, dub), settings, registry, between=attack).run()
    assert swapped == [point, str(Stage.RECHECK)]  # the attack ran

    # Every frame of the output is the performer's shot (re-encoded, the mouth edited, the
    # watermark in): the stranger's pixels appear nowhere.
    out, performer, stranger = _frames(outcome.output), _frames(DEMO_SHOT), _frames(STRANGER)
    assert out.shape == performer.shape
    to_performer = np.abs(out - performer).mean(axis=(1, 2, 3))
    to_stranger = np.abs(out - stranger).mean(axis=(1, 2, 3))
    assert to_performer.max() < 6.0, to_performer.max()
    assert (to_stranger > 3 * to_performer).all(), (to_stranger.min(), to_performer.max())

    # The manifest and the job record name the bytes rendered; the names stay the
    # operator's (the file name, the default output name and the manifest title).
    assert _manifest_hashes(settings, outcome.output)["source shot"] == performer_sha
    inputs = (outcome.job_dir / "inputs.json").read_text(encoding="utf-8")
    assert performer_sha in inputs and str(shot) in inputs
    assert outcome.output.name.startswith("shot.lipsync.fr.")
    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    assert report.title == "shot (fr lip-sync)"


def test_a_dub_swapped_after_ingest_is_never_spoken(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    shot, dub = _operator_files(tmp_path)
    dub_sha = sha256_file(dub)
    swapped = threading.Event()

    def attack(at: str) -> None:
        # Hashed; the dub's phones are worked out while the faces are tracked, next. Put
        # back once rendered (as above).
        if at == "ingested":
            _swap(dub, ATTACKER_VOICE, "overwrite")
            swapped.set()
        elif at == str(Stage.RECHECK):
            _swap(dub, OTHER_VOICE, "overwrite")

    outcome = RenderJob(_request(shot, dub), settings, registry, between=attack).run()
    assert swapped.is_set()

    # The output speaks the hashed dub: its loudness follows that voice's, not the
    # attacker's (envelopes over 40 ms, one per frame).
    spoken = _envelope(outcome.output)
    hashed, attacker = _envelope(OTHER_VOICE), _envelope(ATTACKER_VOICE)
    n = min(len(spoken), len(hashed), len(attacker))
    with_hashed = float(np.corrcoef(spoken[:n], hashed[:n])[0, 1])
    with_attacker = float(np.corrcoef(spoken[:n], attacker[:n])[0, 1])
    assert with_hashed > 0.99, (with_hashed, with_attacker)
    assert with_attacker < 0.95, (with_hashed, with_attacker)  # GRID sentences: ~0.84
    assert _manifest_hashes(settings, outcome.output)["dub dialogue"] == dub_sha


def _envelope(path: Path) -> NDArray[np.float64]:
    audio = load_audio(path)
    mono = np.asarray(audio.samples, dtype=np.float64).mean(axis=0)
    hop = audio.rate // 25
    frames = len(mono) // hop
    rms: NDArray[np.float64] = np.sqrt((mono[:frames * hop].reshape(frames, hop) ** 2
                                        ).mean(axis=1))
    return rms


def test_staging_copies_exactly_the_bytes_it_hashes_and_refuses_a_fifo(tmp_path: Path) -> None:
    staged = stage_inputs({"source": DEMO_SHOT}, tmp_path / "inputs")["source"]
    assert staged.path == tmp_path / "inputs" / "source" / DEMO_SHOT.name
    assert staged.sha256 == sha256_file(DEMO_SHOT)
    assert hashlib.sha256(staged.path.read_bytes()).hexdigest() == staged.sha256
    assert not os.access(staged.path, os.W_OK) or os.geteuid() == 0  # a read-only copy

    # A FIFO put at an input's path would block a plain open() forever: refused at once.
    fifo = tmp_path / "shot.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputNotFoundError, match="not a regular file"):
        stage_inputs({"source": fifo}, tmp_path / "other")


def test_a_refusal_of_record_names_the_shot_identified_not_the_path_read_again(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    # A stranger's shot, no consented face: the refusal is ledgered with the source hash.
    # The attacker puts the performer's shot at the path once it was hashed; the record must
    # still name the bytes identified (the stranger's).
    from studio.errors import ConsentRefused
    from studio.services.context import AppContext
    from studio.services.render import start_render

    shot, dub = _operator_files(tmp_path)
    shutil.copyfile(STRANGER, shot)
    run = start_render(AppContext(settings, registry), _request(shot, dub))
    run.job.between = lambda at: _swap(shot, DEMO_SHOT, "replace") if at == "ingested" \
        else None
    with pytest.raises(ConsentRefused) as refused:
        run.run()
    recorded = refused.value.decision.to_json()["request"]["source_media_sha256"]
    assert recorded == sha256_file(STRANGER) != sha256_file(shot)
