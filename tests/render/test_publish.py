"""Step 7 tells the truth at every edge: a revocation racing the publication, two renders
with one output name, a crash at every point of a render, Ctrl-C, and what ``verify`` says
about files that were signed but never published.

Renders are shared between assertions through module-scoped fixtures (each runs the demo
render once, a few seconds on two cores).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from consent.ledger import EventType, Ledger
from consent.registry import Registry
from studio.accounts.service import migrate as migrate_accounts
from studio.bootstrap import open_registry
from studio.cli import app
from studio.jobs import JobManager
from studio.provenance.identity import trust_anchors
from studio.provenance.store import ManifestStore
from studio.provenance.verify import verify_file
from studio.provenance.watermark import WatermarkEmbedder
from studio.render import (
    RenderDenied,
    RenderJob,
    RenderOutcome,
    RenderRequest,
    RequestError,
    Stage,
    staging,
)
from studio.settings import Settings
from tests.media.mediagen import strip_by_reencode, write_video

from .conftest import DEMO_SHOT, OTHER_VOICE, ROOT, warm_analysis

GRANT = "demo-grant-0001"


def _request(**changes: object) -> RenderRequest:
    values: dict[str, object] = dict(
        operation="lipsync", source=DEMO_SHOT, project_id="demo-dub", language="fr",
        source_language="en", territory="FR", operator="Test Operator", dub=OTHER_VOICE)
    values.update(changes)
    return RenderRequest(**values)  # type: ignore[arg-type]


def _fresh(seeded: Path, into: Path) -> tuple[Settings, Registry]:
    data = into / "studio-data"
    shutil.copytree(seeded, data)
    settings = Settings.from_env(data)
    return settings, open_registry(settings)


def _events(registry: Registry) -> list[tuple[EventType, dict[str, Any]]]:
    with registry.store.session() as s:
        return [(e.event_type, e.body) for e in
                (Ledger.entry(s, i) for i in range(Ledger.size(s)))]


def _published_hashes(registry: Registry) -> list[str]:
    return [b["output_sha256"] for t, b in _events(registry)
            if t is EventType.OUTPUT_PUBLISHED]


def _ledger_ok(registry: Registry) -> bool:
    with registry.store.session() as s:
        return registry.ledger.verify(s).ok


def _staging_left(settings: Settings) -> list[str]:
    root = staging.staging_root(settings)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_DATA": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _cli_here(settings: Settings, *args: str) -> Result:
    """The CLI in this process: for what a command reports, where the process and its exit
    status are not the point (``_cli`` keeps those tests on a real subprocess)."""
    return CliRunner().invoke(app, ["--data", str(settings.data_dir), *args])


# -- a revocation ordered before the publication -----------------------------------------------


@dataclass
class Refused:
    settings: Settings
    registry: Registry
    job: RenderJob
    denied: RenderDenied
    signed_copy: Path
    payload: int


@pytest.fixture(scope="module")
def revoked_before_publish(warm_data: Path, tmp_path_factory: pytest.TempPathFactory
                           ) -> Iterator[Refused]:
    """A render whose grant is revoked after the re-check and the signing, just before the
    publication (the test-only ``between`` hook): the last check must stop it. The demo
    shot's analysis is kept (``warm_data``): this is about step 7, not the tracker."""
    tmp = tmp_path_factory.mktemp("revoked")
    settings, registry = _fresh(warm_data, tmp)
    copy = tmp / "leaked-signed.mp4"
    job = RenderJob(_request(output_name="revoked.mp4"), settings, registry)

    def between(point: str) -> None:
        if point == "signed":  # what a user would hold if a staged file leaked
            shutil.copyfile(job.staging.folder / "signed.mp4", copy)
        if point == str(Stage.PUBLISH):
            registry.revoke_grant(GRANT, reason="withdrawn before publication",
                                  officer="Officer", performer_request_reference="REQ-9")

    job.between = between
    with pytest.raises(RenderDenied) as denied:
        job.run()
    yield Refused(settings, registry, job, denied.value, copy, _payload_of(copy, settings))
    registry.store.dispose()


def _payload_of(signed: Path, settings: Settings) -> int:
    from studio.provenance.signing import read_manifest

    report = read_manifest(signed, trust_anchors_pem=trust_anchors(settings))
    assert report.soft_binding is not None
    return report.soft_binding.payload


def test_a_revocation_after_the_recheck_stops_the_publication(
        revoked_before_publish: Refused) -> None:
    r = revoked_before_publish
    assert r.denied.stage is Stage.PUBLISH
    assert any("revoked" in reason for reason in r.denied.decision.reasons)
    assert not (r.settings.outputs_dir / "revoked.mp4").exists()
    kinds = [t for t, _ in _events(r.registry)]
    # The re-check allowed, then the revocation, then the last check denied; no output.
    relevant = [t for t in kinds if t in (EventType.DECISION, EventType.REVOCATION,
                                          EventType.OUTPUT_PUBLISHED)]
    assert relevant[-3:] == [EventType.DECISION, EventType.REVOCATION, EventType.DECISION]
    assert EventType.OUTPUT_PUBLISHED not in kinds
    assert r.registry.revocation_report(GRANT).outputs == ()
    assert _ledger_ok(r.registry)


def test_a_refused_render_leaves_no_media_and_releases_its_payload(
        revoked_before_publish: Refused) -> None:
    r = revoked_before_publish
    assert _staging_left(r.settings) == ["jobs", "names"]
    assert {p.name for p in r.job.folder.iterdir()} <= {
        "request.json", "inputs.json", "identity.json", "decision.json", "recheck.json",
        "final-check.json", "log.jsonl"}
    store = ManifestStore(r.settings.manifests_dir)
    released = store.released(r.payload)
    assert released is not None and "denied" in released["reason"]
    assert r.payload not in store.payloads_in_use()
    assert store.by_payload(r.payload) == []


def test_a_signed_but_unpublished_file_does_not_verify(revoked_before_publish: Refused) -> None:
    r = revoked_before_publish
    report = verify_file(r.signed_copy, r.registry, ManifestStore(r.settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(r.settings), watermark=False)
    assert report.provenance == "Trusted"  # the studio did sign it ...
    assert report.publication == "signed, not published"  # ... and never published it
    assert report.ledger is None and not report.ok
    done = _cli(r.settings, "verify", str(r.signed_copy), "--no-watermark")
    assert done.returncode == 1, done.stderr
    assert "signed, not published" in done.stdout
    # The JSON report in this process (the exit code above is the subprocess's point).
    data = json.loads(_cli_here(r.settings, "verify", str(r.signed_copy), "--no-watermark",
                                "--json").stdout)
    assert data["badges"]["publication"] == "signed, not published"
    assert data["published"] is False and data["ok"] is False


def test_a_stripped_copy_of_an_unpublished_file_recovers_nothing(
        revoked_before_publish: Refused, tmp_path: Path) -> None:
    """Its watermark is read, but the payload was released: no manifest, no badge, and the
    report says what the payload was."""
    r = revoked_before_publish
    stripped = tmp_path / "stripped.mp4"
    # Stripped, not degraded: what is under test is the released payload, not RivaGAN's
    # margin, which at GRID's native 360x288 after CRF 18 is 0-3 wrong bits depending on the
    # render's encode (multi-threaded x264 is not byte-reproducible), sometimes past the
    # code's corrections. Near-lossless, the read is the output's own.
    strip_by_reencode(r.signed_copy, stripped, crf=8)
    report = verify_file(stripped, r.registry, ManifestStore(r.settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(r.settings))
    assert report.manifest is None and report.provenance == "Missing", report.to_json()
    assert report.ledger is None and report.publication == "not published" and not report.ok
    assert report.watermark is not None and report.watermark.payload == r.payload
    assert report.recovered is not None and not report.recovered.matched
    assert "published nothing" in report.recovered.note


# -- a revocation during the publication ---------------------------------------------------------


def test_a_revocation_during_the_publication_is_ordered_after_it(settings: Settings,
                                                                 registry: Registry) -> None:
    started = threading.Event()

    def revoke() -> None:
        started.set()
        registry.revoke_grant(GRANT, reason="withdrawn during publication", officer="Officer",
                              performer_request_reference="REQ-10")

    revoker = threading.Thread(target=revoke)

    def between(point: str) -> None:
        if point == "linked":  # inside the publication's transaction, under the ledger lock
            revoker.start()
            assert started.wait(10)
            revoker.join(0.5)
            assert revoker.is_alive(), "the revocation overtook the publication"

    outcome = RenderJob(_request(), settings, registry, between=between).run()
    revoker.join(60)
    assert not revoker.is_alive()
    kinds = [t for t, _ in _events(registry)]
    assert kinds.index(EventType.OUTPUT_PUBLISHED) < kinds.index(EventType.REVOCATION)
    listed = [o.output_sha256 for o in registry.revocation_report(GRANT).outputs]
    assert listed == [outcome.output_sha256]


# -- two renders, one output name ----------------------------------------------------------------


@dataclass
class SameName:
    settings: Settings
    registry: Registry
    first: RenderOutcome
    second: RenderJob
    refusal: RequestError
    decisions_before_second: int


@pytest.fixture(scope="module")
def same_name(warm_data: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[SameName]:
    """Two renders asking for ``same.mp4``; the second starts while the first runs (the demo
    shot's analysis kept, as in ``revoked_before_publish``)."""
    settings, registry = _fresh(warm_data, tmp_path_factory.mktemp("same-name"))
    second = RenderJob(_request(output_name="same.mp4"), settings, registry)
    seen: dict[str, Any] = {}

    def between(point: str) -> None:
        if point == str(Stage.RUN):
            seen["decisions"] = sum(t is EventType.DECISION for t, _ in _events(registry))
            with pytest.raises(RequestError) as refused:
                second.run()
            seen["refusal"] = refused.value

    first = RenderJob(_request(output_name="same.mp4"), settings, registry,
                      between=between).run()
    yield SameName(settings, registry, first, second, seen["refusal"], seen["decisions"])
    registry.store.dispose()


def test_a_second_render_of_a_reserved_name_is_refused_before_any_work(
        same_name: SameName) -> None:
    r = same_name
    assert "same.mp4" in str(r.refusal) and r.first.job_id in str(r.refusal)
    log = [json.loads(line)["message"] for line in
           (r.second.folder / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0].startswith("stopped: OutputExistsError")  # before any work
    # The second render asked the gate nothing and published nothing.
    assert sum(t is EventType.DECISION for t, _ in _events(r.registry)) == \
        r.decisions_before_second + 1  # the first render's re-check only
    assert _published_hashes(r.registry) == [r.first.output_sha256]
    assert [o.output_sha256 for o in r.registry.revocation_report(GRANT).outputs] == \
        [r.first.output_sha256]


def test_the_cli_refuses_an_existing_output_name_and_ledgers_nothing(same_name: SameName
                                                                     ) -> None:
    r = same_name
    before = _events(r.registry)
    done = _cli(r.settings, "render", "lipsync", str(DEMO_SHOT), "--dub", str(OTHER_VOICE),
                "--project", "demo-dub", "--language", "fr", "--territory", "FR",
                "--operator", "Test Operator", "--output", "same.mp4", "--json")
    assert done.returncode == 5, done.stderr  # a conflict: the name is taken
    assert "already exists" in json.loads(done.stdout)["message"]
    assert _events(r.registry) == before
    assert _published_hashes(r.registry) == [r.first.output_sha256]
    assert _staging_left(r.settings) == ["jobs", "names"]


def test_a_published_output_verifies_as_published(same_name: SameName) -> None:
    r = same_name
    done = _cli_here(r.settings, "verify", str(r.first.output), "--no-watermark", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["badges"]["publication"] == "published" and data["published"] is True
    assert data["ledger"]["index"] == r.first.output_ledger_index


def test_a_watermark_payload_without_matching_frames_earns_no_recovered_badge(
        same_name: SameName, tmp_path: Path) -> None:
    """Another clip carrying a real, issued payload: the payload is found, but no stored
    manifest matches the frames, so nothing is 'Recovered' and nothing is published."""
    r = same_name
    marker = WatermarkEmbedder(r.first.watermark_payload)
    with av.open(str(OTHER_VOICE)) as c:
        frames = [marker.mark(np.asarray(f.to_ndarray(format="rgb24"), np.uint8), i)
                  for i, f in enumerate(c.decode(video=0))]
    other = write_video(tmp_path / "other.mp4", frames, options={"crf": "18"})
    report = verify_file(other, r.registry, ManifestStore(r.settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(r.settings))
    # The read names the payload either by decoding it or, when this content leaves a few
    # bits wrong that the code cannot correct (2-4 of 32 for about 1 payload in 13 on this
    # clip at CRF 18), as the one issued payload within 4 bits of the read (``_recover``).
    assert report.watermark is not None and report.watermark.frames_used > 0
    assert report.watermark.payload in (None, r.first.watermark_payload)
    assert report.recovered is not None and not report.recovered.matched
    assert report.provenance == "Missing", report.to_json()
    assert f"payload {r.first.watermark_payload:08x} only" in report.recovered.note
    assert report.ledger is None and report.publication == "not published"
    assert report.to_json()["recovered"]["matched"] is False
    assert not report.ok


# -- a crash at every point ----------------------------------------------------------------------

POINTS = [*(str(s) for s in Stage), "signed", "stored", "linked", "published"]


@pytest.fixture(scope="module")
def crash_data(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[Settings, Registry, Path, Path]]:
    """A data folder, and the first 1.2 s of the demo shot with a 1 s dub (eleven
    renders: the shorter the clip, the cheaper each), the clip's analysis kept as after a
    scan (the crashes are about step 7, not the tracker: each render reuses it)."""
    tmp = tmp_path_factory.mktemp("crashes")
    settings, registry = _fresh(seeded_data, tmp)
    with av.open(str(DEMO_SHOT)) as c:
        frames = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8)
                  for f, _ in zip(c.decode(video=0), range(30), strict=False)]
    with av.open(str(OTHER_VOICE)) as c:
        audio = [f.to_ndarray().astype(np.float32) for f in c.decode(audio=0)]
    mono = np.concatenate([a if a.ndim == 2 else a[None] for a in audio], axis=1)
    mono = mono.mean(axis=0, keepdims=True)
    if np.abs(mono).max() > 1.5:
        mono = mono / 32768.0
    n = 44100  # a second: shorter than the shot, padded with silence
    shot = write_video(tmp / "short.mp4", frames, options={"crf": "18"})
    dub = write_video(tmp / "short-dub.mp4", frames[:2] * 15,
                      audio=(mono[:, :n].astype(np.float32), 44100), options={"crf": "40"})
    warm_analysis(settings.data_dir, shot)
    yield settings, registry, shot, dub
    registry.store.dispose()


@dataclass
class Crashed:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def crash_render() -> Iterator[Callable[..., Crashed]]:
    """Runs tests/render/crash_render.py's render-and-SIGKILL in a child process forked from
    one server that imported the studio once (``--serve``), not in eleven fresh interpreters."""
    server = subprocess.Popen([sys.executable, "-m", "tests.render.crash_render", "--serve"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    def run(*args: str) -> Crashed:
        stdin.write(json.dumps(args) + "\n")
        stdin.flush()
        # One answer line per request; a generous bound only stops a hang.
        ready, _, _ = select.select([stdout], [], [], 600)
        assert ready, "the crash server gave no answer"
        answer = json.loads(stdout.readline())
        return Crashed(int(answer["returncode"]), str(answer["output"]))

    try:
        yield run
    finally:
        stdin.close()
        try:
            server.wait(timeout=60)
        finally:
            server.kill()


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_point_leaves_nothing_that_verifies_as_published(
        point: str, crash_data: tuple[Settings, Registry, Path, Path],
        crash_render: Callable[..., Crashed]) -> None:
    settings, registry, shot, dub = crash_data
    name = f"crash-{point}.mp4"
    proc = crash_render(str(settings.data_dir), point, name, str(shot), str(dub))
    assert proc.returncode == -signal.SIGKILL, proc.output
    (job,) = [p for p in (staging.staging_root(settings) / "jobs").iterdir()]
    state = json.loads((job / "state.json").read_text())
    store = ManifestStore(settings.manifests_dir)
    anchors = trust_anchors(settings)
    public = settings.outputs_dir / name
    if point == "published":
        report = verify_file(public, registry, store, trust_anchors_pem=anchors,
                             watermark=False)
        assert report.ok and report.publication == "published", report.to_json()
    elif public.exists():
        # Killed between the link and the commit: public but never ledgered.
        assert point == "linked"
        report = verify_file(public, registry, store, trust_anchors_pem=anchors,
                             watermark=False)
        assert report.publication == "signed, not published" and not report.ok
    # The next start cleans up (the studio's job manager sweeps; a render does too).
    if point == "linked":
        migrate_accounts(registry.store.engine)  # the studio's own tables (studio_jobs)
        JobManager(settings, registry, registry.store).shutdown()
    else:
        assert staging.sweep(settings, registry) == [job.name]
    assert _staging_left(settings) == ["jobs", "names"]
    assert public.exists() == (point == "published")
    job_folder = settings.jobs_dir / job.name
    assert not {"work", "render.mp4", "signed.mp4"} & {p.name for p in job_folder.iterdir()}
    payload = state.get("payload")
    if payload is not None:
        released = store.released(payload)
        assert (released is None) == (point == "published"), released
    for leftover in settings.outputs_dir.glob("*.mp4"):
        left = verify_file(leftover, registry, store, trust_anchors_pem=anchors,
                           watermark=False)
        assert left.publication == "published", leftover
    assert _ledger_ok(registry)


# -- Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_cancels_through_the_documented_path(settings: Settings,
                                                    registry: Registry) -> None:
    """SIGINT as the run stage starts: the pipeline stops at its next frame (or, had the stage
    just ended, the next step does), and nothing is published."""
    env = {**os.environ, "STUDIO_DATA": str(settings.data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio.cli", "render", "lipsync", str(DEMO_SHOT), "--dub",
         str(OTHER_VOICE),
         "--project", "demo-dub", "--language", "fr", "--territory", "FR",
         "--operator", "Test Operator", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list(settings.jobs_dir.glob("*/log.jsonl"))
            if logs and any(json.loads(line)["stage"] == str(Stage.RUN)
                            for line in logs[0].read_text().splitlines()):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    result = json.loads(stdout)
    assert result["error"] == "cancelled", result
    assert "nothing was published" in result["message"]
    assert "Traceback" not in stderr and "InterruptedError" not in stdout + stderr
    (log,) = settings.jobs_dir.glob("*/log.jsonl")
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["message"].startswith("stopped: RenderCancelled"), last
    assert not settings.outputs_dir.exists() or not list(settings.outputs_dir.iterdir())
    assert _staging_left(settings) == ["jobs", "names"]
    assert EventType.OUTPUT_PUBLISHED not in [t for t, _ in _events(registry)]
    released = list((settings.manifests_dir / "released").glob("*.json"))
    assert len(released) == 1 and "cancelled" in released[0].read_text()
