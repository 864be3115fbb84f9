"""The seven steps of a render on real footage: what is published, what is refused, and what a
crash or a revocation in the middle leaves behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consent.ledger import Ledger
from consent.registry import Registry
from pipelines.media import probe
from studio.bootstrap import open_registry
from studio.provenance.identity import trust_anchors
from studio.provenance.signing import read_manifest
from studio.provenance.store import ManifestStore
from studio.provenance.verify import verify_file
from studio.render import (
    RenderCancelled,
    RenderDenied,
    RenderJob,
    RenderOutcome,
    RenderRequest,
    RequestError,
    Stage,
)
from studio.settings import Settings
from tests.media.mediagen import strip_by_reencode
from tests.provenance.test_independent_readers import encypher_verify

from .conftest import DEMO_SHOT, OTHER_VOICE, ROOT


def _request(**changes: object) -> RenderRequest:
    values: dict[str, object] = dict(
        operation="lipsync", source=DEMO_SHOT, project_id="demo-dub", language="fr",
        source_language="en", territory="FR", operator="Test Operator", dub=OTHER_VOICE)
    values.update(changes)
    return RenderRequest(**values)  # type: ignore[arg-type]


def _outputs(settings: Settings) -> list[Path]:
    folder = settings.outputs_dir
    return sorted(folder.iterdir()) if folder.exists() else []


def _ledger_ok(registry: Registry) -> bool:
    with registry.store.session() as s:
        return registry.ledger.verify(s).ok


# -- the allowed path --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """The data folder after one allowed render (its registry closed), what the render
    returned and the progress it reported."""

    data: Path
    outcome: RenderOutcome
    events: tuple[tuple[str, int, int], ...]


@pytest.fixture(scope="module")
def rendered(warm_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """One allowed render of the demo shot, shared by the tests that only examine what it
    published (each on its own copy of the data folder: :func:`published`)."""
    data = tmp_path_factory.mktemp("rendered") / "studio-data"
    shutil.copytree(warm_data, data)
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    events: list[tuple[str, int, int]] = []
    try:
        outcome = RenderJob(_request(output_name="scene1.fr.mp4"), settings, registry,
                            listener=lambda e: events.append((str(e.stage), e.done,
                                                              e.total))).run()
    finally:
        registry.store.dispose()
    return Rendered(data, outcome, tuple(events))


@pytest.fixture
def published(rendered: Rendered, tmp_path: Path
              ) -> Iterator[tuple[Settings, Registry, RenderOutcome]]:
    """A test's own copy of the ``rendered`` data folder (a revocation or a tampered file
    stays in it), its registry, and the outcome with its paths in the copy."""
    data = tmp_path / "studio-data"
    shutil.copytree(rendered.data, data)
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    outcome = replace(rendered.outcome,
                      output=settings.outputs_dir / rendered.outcome.output.name,
                      job_dir=settings.jobs_dir / rendered.outcome.job_dir.name)
    yield settings, registry, outcome
    registry.store.dispose()


def test_an_allowed_render_is_published_stamped_and_ledgered(
        rendered: Rendered, published: tuple[Settings, Registry, RenderOutcome]) -> None:
    settings, registry, outcome = published
    events = list(rendered.events)

    assert outcome.output == settings.outputs_dir / "scene1.fr.mp4"
    assert {p.name for p in _outputs(settings)} == {"scene1.fr.mp4",
                                                   "scene1.fr.mp4.visemes.json"}
    info = probe(outcome.output)
    assert info.video is not None and info.video.frame_count == 75
    # Every stage reported, in order, and frames were counted during the run.
    stages = list(dict.fromkeys(s for s, _, _ in events))
    assert stages == [str(s) for s in Stage]
    assert (str(Stage.RUN), 75, 75) in events
    # The job folder keeps the record, not the intermediate files.
    names = {p.name for p in outcome.job_dir.iterdir()}
    assert {"request.json", "inputs.json", "decision.json", "recheck.json", "outcome.json",
            "log.jsonl", "identity.json"} <= names
    assert "work" not in names and "render.mp4" not in names
    # Two allow decisions (gate and re-check) and the output event are in the ledger.
    with registry.store.session() as s:
        (entry,) = Ledger.entries_referencing(s, "output", outcome.output_sha256)
    assert entry.index == outcome.output_ledger_index
    assert entry.body["decision_id"] == outcome.decision.decision_id
    assert _ledger_ok(registry)

    report = read_manifest(outcome.output, trust_anchors_pem=trust_anchors(settings))
    assert str(report.state) == "Trusted"
    translated = report.action("c2pa.translated")
    assert translated is not None
    assert (translated.source_language, translated.target_language) == ("en", "fr")
    edited = report.action("c2pa.edited")
    assert edited is not None and edited.changes
    assert edited.digital_source_type is not None
    assert edited.digital_source_type.endswith("compositeWithTrainedAlgorithmicMedia")
    assert report.consent is not None
    assert report.consent.grant_ids == ("demo-grant-0001",)
    assert report.consent.decision_id == outcome.decision.decision_id
    assert report.soft_binding is not None
    assert report.soft_binding.payload == outcome.watermark_payload
    assert set(report.training_mining.values()) == {"notAllowed"}
    ingredients = {i.title: i for i in report.ingredients}
    assert ingredients["source shot"].relationship == "parentOf"
    assert ingredients["dub dialogue"].relationship == "componentOf"
    assert ingredients["dub dialogue"].sha256 is not None
    # A second C2PA implementation (not c2pa-rs) agrees, trusting the studio root only.
    independent = encypher_verify(outcome.output, trust_anchors(settings))
    assert (independent["integrity"], independent["signature"], independent["hard_binding"],
            independent["validation_state"]) == ("valid", "valid", "match", "Trusted")


def test_verify_reports_consent_now_and_follows_a_revocation(
        published: tuple[Settings, Registry, RenderOutcome]) -> None:
    settings, registry, outcome = published
    store = ManifestStore(settings.manifests_dir)
    anchors = trust_anchors(settings)
    before = verify_file(outcome.output, registry, store, trust_anchors_pem=anchors)
    assert before.ok, before.to_json()
    assert (before.provenance, before.consent_now) == ("Trusted", "active")
    assert before.ledger is not None and before.ledger.verified
    assert before.ledger.index == outcome.output_ledger_index
    assert before.watermark_status in ("found", "found (weak read)")

    registry.revoke_grant("demo-grant-0001", reason="performer withdrew", officer="Officer",
                          performer_request_reference="REQ-1")
    after = verify_file(outcome.output, registry, store, trust_anchors_pem=anchors,
                        watermark=False)
    assert after.consent_now == "revoked" and not after.ok
    assert after.provenance == "Trusted"  # the record of the past is still intact
    report = registry.revocation_report("demo-grant-0001")
    assert [o.output_sha256 for o in report.outputs] == [outcome.output_sha256]


def test_a_tampered_output_is_invalid_and_a_stripped_copy_is_recovered(
        published: tuple[Settings, Registry, RenderOutcome], tmp_path: Path) -> None:
    settings, registry, outcome = published
    store = ManifestStore(settings.manifests_dir)
    anchors = trust_anchors(settings)
    data = bytearray(outcome.output.read_bytes())
    data[data.find(b"mdat") + 4000] ^= 0x01
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    bad = verify_file(tampered, registry, store, trust_anchors_pem=anchors, watermark=False)
    assert bad.provenance == "Invalid" and not bad.ok
    assert bad.manifest is not None and bad.manifest.failure_codes

    stripped = tmp_path / "stripped.mp4"
    strip_by_reencode(outcome.output, stripped, crf=23)
    found = verify_file(stripped, registry, store, trust_anchors_pem=anchors)
    assert found.manifest is None and found.recovered is not None, found.to_json()
    assert found.recovered.original_sha256 == outcome.output_sha256
    assert found.provenance == "Recovered" and found.consent_now == "active"
    assert found.ledger is not None and found.ledger.index == outcome.output_ledger_index

    # An unrelated file: nothing to recover, nothing claimed.
    plain = verify_file(OTHER_VOICE, registry, store, trust_anchors_pem=anchors)
    assert plain.provenance == "Missing" and plain.recovered is None


# -- refusals -----------------------------------------------------------------------------------


def test_out_of_scope_render_is_denied_and_nothing_published(settings: Settings,
                                                             registry: Registry) -> None:
    with pytest.raises(RenderDenied) as denied:
        RenderJob(_request(project_id="another-film"), settings, registry).run()
    assert denied.value.stage is Stage.AUTHORIZE
    assert any("another-film" in r for r in denied.value.decision.reasons)
    assert _outputs(settings) == []
    assert denied.value.decision.ledger_index is not None and _ledger_ok(registry)


def test_a_face_without_consent_is_refused(settings: Settings, registry: Registry) -> None:
    with pytest.raises(RequestError, match="no face in the shot matches"):
        RenderJob(_request(source=OTHER_VOICE, dub=DEMO_SHOT), settings, registry).run()
    with pytest.raises(RequestError, match="no face track t7"):
        RenderJob(_request(tracks=("t7",)), settings, registry).run()
    assert _outputs(settings) == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"script": DEMO_SHOT}, "not both"),
    ({"dub": None}, "either a dub"),
    ({"output_name": "../escape.mp4"}, "output name"),
    ({"output_name": "clip.exe"}, "output name"),
    ({"source": Path("/nonexistent/shot.mp4")}, "not a readable file"),
    ({"tracks": ("face1",)}, "track labels"),
    ({"operator": "  "}, "operator"),
    ({"dub_channels": ("A", "B")}, "each given a face"),
    ({"dub_channels": tuple("ABCDE"), "speakers": {c: f"t{i}" for i, c in
                                                   enumerate("ABCDE", start=1)}},
     "one to 4 distinct speakers"),
    ({"dub_channels": ("A", "A"), "speakers": {"A": "t1"}}, "distinct"),
    ({"dub_channels": ("A", "B"), "speakers": {"A": "t1", "B": "t1"}},
     "gives t1 to A, B: a face speaks for one speaker"),
])
def test_bad_requests_are_refused_before_anything_runs(changes: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(RequestError, match=message):
        _request(**changes)


def test_an_existing_output_is_never_replaced(settings: Settings, registry: Registry) -> None:
    settings.outputs_dir.mkdir(parents=True)
    (settings.outputs_dir / "taken.mp4").write_bytes(b"someone else's")
    with pytest.raises(RequestError, match="already exists"):
        RenderJob(_request(output_name="taken.mp4"), settings, registry).run()
    assert (settings.outputs_dir / "taken.mp4").read_bytes() == b"someone else's"


def test_cancel_publishes_nothing(settings: Settings, registry: Registry) -> None:
    job = RenderJob(_request(), settings, registry)
    job.listener = lambda e: job.cancel.set() if e.stage is Stage.RUN and e.done > 10 else None
    job.progress.listener = job.listener
    with pytest.raises(RenderCancelled, match="nothing was published"):
        job.run()
    assert _outputs(settings) == []
    assert not (job.folder / "work").exists() and not (job.folder / "render.mp4").exists()
    assert not list((settings.data_dir / "staging" / "jobs").iterdir())


# -- crash and revocation while another process renders ----------------------------------------
# The demo shot (75 frames, its analysis kept as after a scan: ``settings``) gives seconds of
# rendering once the run stage starts, enough for a kill or a revocation to land mid-run;
# each test checks from the job's log that it did. (A 9 s shot, tracked afresh by every
# render, cost ~10 s a test for the same race.)


def _spawn_render(settings: Settings, shot: Path, dub: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "STUDIO_DATA": str(settings.data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "studio.cli", "render", "lipsync", str(shot), "--dub", str(dub),
         "--project", "demo-dub", "--language", "fr", "--territory", "FR",
         "--operator", "Test Operator", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_stage(settings: Settings, stage: Stage, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in settings.jobs_dir.glob("*/log.jsonl"):
            if any(json.loads(line)["stage"] == str(stage)
                   for line in log.read_text().splitlines()):
                return log.parent
        time.sleep(0.05)
    raise AssertionError(f"the render never reached {stage}")


def _stages(job_dir: Path) -> list[tuple[str, datetime]]:
    """The stages the job's log recorded, each with the time of its first entry."""
    seen: dict[str, datetime] = {}
    for line in (job_dir / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        seen.setdefault(entry["stage"], datetime.fromisoformat(entry["at"]))
    return list(seen.items())


def test_killing_the_render_mid_run_leaves_no_output_and_a_sound_ledger(
        settings: Settings, registry: Registry) -> None:
    proc = _spawn_render(settings, DEMO_SHOT, OTHER_VOICE)
    try:
        job_dir = _wait_for_stage(settings, Stage.RUN)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _stages(job_dir)[-1][0] == str(Stage.RUN)  # killed mid-run, not after
    assert _outputs(settings) == []
    assert _ledger_ok(registry)
    # The studio still works after the crash.
    assert RenderJob(_request(), settings, registry).run().output.exists()


def test_a_revocation_during_the_render_stops_publication(
        settings: Settings, registry: Registry) -> None:
    proc = _spawn_render(settings, DEMO_SHOT, OTHER_VOICE)
    try:
        job_dir = _wait_for_stage(settings, Stage.RUN)
        registry.revoke_grant("demo-grant-0001", reason="withdrawn during the render",
                              officer="Officer", performer_request_reference="REQ-2")
        revoked_at = datetime.now(UTC)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert (job_dir / "log.jsonl").read_text().count('"stage": "re-check"') >= 1, stderr
    # The revocation was recorded while step 4 still ran: the re-check began after it.
    stages = dict(_stages(job_dir))
    assert stages[str(Stage.RUN)] < revoked_at < stages[str(Stage.RECHECK)], stages
    assert proc.returncode == 1, stderr
    result = json.loads(stdout)
    assert result["error"] == "denied" and result["stage"] == "re-check"
    assert any("revoked" in r for r in result["decision"]["reasons"])
    assert _outputs(settings) == []
    assert _ledger_ok(registry)
