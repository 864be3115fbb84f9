"""Motion files issued by the registry (issue 12, hole 3 "forged motion file").

The attack: a motion file carried its driver's identity embeddings under an unkeyed SHA-256,
so putting a consenting driver's embeddings beside a stranger's performance and recomputing
the hash made the stranger pass the consent check. Now the registry seals the file after the
gate allowed ``performance_driving``, and a render checks the seal. Real media: the demo
performer (GRID bbaf2n, whose demo grant covers performance_driving) is the consenting
driver; GRID brbk7n is the stranger. Refusals use a still source, so that they stop after one
frame of identification; one render shows that a sound file still renders.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from consent.canonical import canonical_bytes
from consent.documents import Grant, MotionSeal, SignedDocument, sign_draft
from consent.errors import (
    MotionSealError,
    SealScopeError,
    TamperedMotionError,
    UnledgeredSealError,
    UntrustedSealError,
)
from consent.fields import Channel
from consent.keys import PrivateKey
from consent.motion_seal import seal_draft
from consent.registry import Registry
from pipelines.faces.analysis import analyse_shot
from pipelines.reenact import Motion, MotionFileError, extract_motion
from pipelines.reenact.motion_file import payload_digest, read_motion_file, save_motion
from studio.bootstrap import open_registry
from studio.cli import app
from studio.identity import embedder_for, sha256_file
from studio.motion_seals import driving_request, issue_motion_file, open_sealed_motion
from studio.render import RenderDenied, RenderJob, RenderRequest
from studio.render.authorization import DRIVER_TRACK, driver_verdict
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE

DEMO_GRANT = Path(__file__).resolve().parents[2] / "assets" / "demo" / "demo-grant.json"

PROJECT = "demo-dub"


@dataclass(frozen=True)
class Issued:
    data: Path          # a data folder whose registry issued ``good``
    good: Path          # the demo performer's performance, sealed for demo-dub
    stranger: Motion    # brbk7n's performance (no consent), with its own embeddings
    still: Path         # a frame of the demo performer, as a still source


def _extract(path: Path, settings: Settings, work: Path) -> Motion:
    embedder = embedder_for(settings)
    analysis = analyse_shot(path, work, embedder)
    return extract_motion(analysis, neutral_frame="rest", embedder=embedder.name,
                          video_sha256=sha256_file(path))


@pytest.fixture(scope="module")
def issued(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    root = tmp_path_factory.mktemp("motion-seals")
    data = root / "studio-data"
    shutil.copytree(seeded_data, data)
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    try:
        demo = _extract(DEMO_SHOT, settings, root / "demo")
        result = issue_motion_file(registry, settings, demo, root / "demo.motion.npz",
                                   project_id=PROJECT, language="en", territory="FR",
                                   channel=Channel.STREAMING, operator="Test Operator")
        assert result.match.performer_id == "demo-performer"
        assert result.decision is not None and result.decision.allowed
        assert result.path is not None
        stranger = _extract(OTHER_VOICE, settings, root / "stranger")
    finally:
        registry.store.dispose()
    with av.open(str(DEMO_SHOT)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    still = root / "portrait.png"
    cv2.imwrite(str(still), frame)
    return Issued(data, result.path, stranger, still)


@pytest.fixture
def studio(issued: Issued, tmp_path: Path) -> tuple[Settings, Registry]:
    """A fresh copy of the issuing studio's data folder (renders and revocations stay here)."""
    data = tmp_path / "studio-data"
    shutil.copytree(issued.data, data)
    return Settings.from_env(data), open_registry(Settings.from_env(data))


def _request(motion: Path, source: Path, **changes: object) -> RenderRequest:
    values: dict[str, object] = dict(
        operation="reenact", source=source, project_id=PROJECT, language="en",
        territory="FR", operator="Test Operator", motion=motion)
    values.update(changes)
    return RenderRequest(**values)  # type: ignore[arg-type]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _swapped(issued: Issued, folder: Path) -> dict[str, np.ndarray]:
    """The stranger's performance under the consenting driver's embeddings, header and seal."""
    good = _arrays(issued.good)
    stranger = save_motion(issued.stranger, folder / "stranger.motion.npz",
                           seal=lambda _digest: b"{}")
    forged = _arrays(stranger)
    forged["embeddings"] = good["embeddings"]
    forged["header"] = good["header"]  # the consenting driver's video hash and identity
    forged["seal"] = good["seal"]
    n = min(len(forged["deltas"]), len(good["deltas"]))
    for member in ("deltas", "pose", "present"):
        forged[member] = forged[member][:n]
    return forged


def _reseal(arrays: dict[str, np.ndarray], key: PrivateKey, **changes: object) -> None:
    """Put a seal over ``arrays``' real digest, signed by ``key`` (the attacker's)."""
    body = json.loads(arrays["seal"].tobytes())["signed"]
    body.update(payload_sha256=payload_digest(arrays), **changes)
    doc = SignedDocument.sign(MotionSeal.model_validate(body), [key])
    arrays["seal"] = np.frombuffer(doc.to_bytes(), np.uint8)


def test_the_issued_file_is_sealed_by_the_registry_for_its_decision(
        issued: Issued, studio: tuple[Settings, Registry]) -> None:
    settings, registry = studio
    loaded, checked = open_sealed_motion(registry, settings, issued.good, PROJECT)
    seal = checked.seal
    assert checked.signer_key_id == registry.public_key.key_id
    assert seal.driver_performer_id == "demo-performer" and seal.project_id == PROJECT
    assert [g.grant_id for g in seal.grants] == ["demo-grant-0001"]
    assert [g.status for g in checked.grants] == ["active"]
    assert seal.payload_sha256 == loaded.payload_sha256
    assert seal.video_sha256 == sha256_file(DEMO_SHOT)
    decision = registry.decision_document(seal.decision_id)
    assert decision["allowed"] and decision["ledger_index"] == seal.decision_ledger_index
    assert [(s["technique"], s["performer_id"]) for s in decision["request"]["subjects"]] == [
        ("performance_driving", "demo-performer")]
    np.testing.assert_array_equal(loaded.motion.identity.embeddings,
                                  _arrays(issued.good)["embeddings"])


def test_swapped_embeddings_are_refused(issued: Issued, studio: tuple[Settings, Registry],
                                        tmp_path: Path) -> None:
    settings, registry = studio
    forged = _swapped(issued, tmp_path)
    # The attack of the issue: the file's hash recomputed (here the payload digest; the old
    # format kept it in the header), the registry's seal kept.
    plain = _write(tmp_path / "swapped.motion.npz", forged)
    with pytest.raises(TamperedMotionError, match="differ from what the registry sealed"):
        open_sealed_motion(registry, settings, plain, PROJECT)
    # ... and with the seal's digest edited to match: the signature no longer verifies.
    body = json.loads(forged["seal"].tobytes())
    body["signed"]["payload_sha256"] = payload_digest(forged)
    forged["seal"] = np.frombuffer(canonical_bytes(body), np.uint8)
    edited = _write(tmp_path / "edited-seal.motion.npz", forged)
    with pytest.raises(TamperedMotionError, match="does not verify"):
        open_sealed_motion(registry, settings, edited, PROJECT)
    # Through the render: refused before any decision, nothing published.
    with pytest.raises(TamperedMotionError):
        RenderJob(_request(edited, issued.still), settings, registry).run()
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())


def test_a_file_resigned_with_another_key_is_refused(
        issued: Issued, studio: tuple[Settings, Registry], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, registry = studio
    forged = _swapped(issued, tmp_path)
    attacker = PrivateKey.generate()
    _reseal(forged, attacker)
    resigned = _write(tmp_path / "resigned.motion.npz", forged)
    with pytest.raises(UntrustedSealError, match="neither this registry's key"):
        open_sealed_motion(registry, settings, resigned, PROJECT)
    # Trusting that key (say, a sister studio's) is not enough: the extraction decision must
    # be in this registry's ledger as sealed, and this seal names one it never made.
    key_file = tmp_path / "trusted.pub"
    key_file.write_bytes(attacker.public_key.to_pem())
    monkeypatch.setenv("STUDIO_MOTION_TRUSTED_KEYS", str(key_file))
    trusting = Settings.from_env(settings.data_dir)
    _reseal(forged, attacker, decision_ledger_index=10_000)
    _write(resigned, forged)
    with pytest.raises(UnledgeredSealError, match="not in this registry's ledger"):
        open_sealed_motion(registry, trusting, resigned, PROJECT)
    _reseal(forged, attacker, decision_ledger_index=0)
    _write(resigned, forged)
    with pytest.raises(UnledgeredSealError, match="another event"):
        open_sealed_motion(registry, trusting, resigned, PROJECT)
    # With the right index but the decision's hash changed, the ledger check still refuses.
    sealed = json.loads(_arrays(issued.good)["seal"].tobytes())["signed"]
    _reseal(forged, attacker, decision_sha256="0" * 64,
            decision_ledger_index=sealed["decision_ledger_index"])
    _write(resigned, forged)
    with pytest.raises(UnledgeredSealError, match="other contents"):
        open_sealed_motion(registry, trusting, resigned, PROJECT)


def test_unsigned_and_old_files_are_refused(issued: Issued, studio: tuple[Settings, Registry],
                                            tmp_path: Path) -> None:
    settings, registry = studio
    arrays = _arrays(issued.good)
    del arrays["seal"]
    unsigned = _write(tmp_path / "unsigned.motion.npz", arrays)
    with pytest.raises(MotionFileError, match="no registry seal"):
        open_sealed_motion(registry, settings, unsigned, PROJECT)
    header = json.loads(arrays["header"].tobytes())
    header.update(version=1, payload_sha256="0" * 64)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    old = _write(tmp_path / "old.motion.npz", arrays)
    with pytest.raises(MotionFileError, match=r"(?i)re-extract"):
        RenderJob(_request(old, issued.still), settings, registry).run()
    arrays = _arrays(issued.good)
    arrays["seal"] = np.frombuffer(b"not a seal", np.uint8)
    junk = _write(tmp_path / "junk.motion.npz", arrays)
    with pytest.raises(TamperedMotionError, match="unreadable"):
        open_sealed_motion(registry, settings, junk, PROJECT)


def test_a_seal_names_whom_the_embeddings_must_match(
        issued: Issued, studio: tuple[Settings, Registry], tmp_path: Path) -> None:
    """Defence in depth: even a file the registry itself sealed for the demo performer drives
    nothing when its embeddings are someone else's (here the stranger's, sealed by calling
    the registry directly, which `studio motion extract` never does)."""
    settings, registry = studio
    loaded, checked = open_sealed_motion(registry, settings, issued.good, PROJECT)
    match = driver_verdict(loaded.motion, registry, embedder_for(settings))
    extraction = registry.authorize(
        driving_request(settings, "demo-performer", operation="motion_extract",
                        project_id=PROJECT, language="en", territory="FR",
                        channel=Channel.STREAMING, operator="Test Operator",
                        source_sha256=checked.seal.video_sha256),
        [match], known_tracks=[DRIVER_TRACK])
    assert extraction.allowed

    def seal(digest: str) -> bytes:
        draft = seal_draft(extraction, format_version=2, payload_sha256=digest,
                           video_sha256=checked.seal.video_sha256,
                           embedder=checked.seal.embedder, created_at=datetime.now(UTC))
        return registry.issue_motion_seal(draft).to_bytes()

    stranger = replace(issued.stranger, identity=replace(
        issued.stranger.identity, video_sha256=checked.seal.video_sha256))
    path = save_motion(stranger, tmp_path / "sealed-stranger.motion.npz", seal=seal)
    with pytest.raises(SealScopeError, match="issued for demo-performer"):
        RenderJob(_request(path, issued.still), settings, registry).run()


def test_a_motion_file_replayed_into_another_project_is_refused(
        issued: Issued, studio: tuple[Settings, Registry]) -> None:
    settings, registry = studio
    with pytest.raises(SealScopeError, match="extracted for project demo-dub"):
        RenderJob(_request(issued.good, issued.still, project_id="other-film"), settings,
                  registry).run()


def test_after_the_drivers_grant_is_revoked_the_render_is_denied(
        issued: Issued, studio: tuple[Settings, Registry]) -> None:
    settings, registry = studio
    registry.revoke_grant("demo-grant-0001", reason="performer withdrew", officer="Officer",
                          performer_request_reference="REQ-7",
                          now=datetime.now(UTC))
    _, checked = open_sealed_motion(registry, settings, issued.good, PROJECT)
    assert [g.status for g in checked.inactive_grants] == ["revoked"]
    with pytest.raises(RenderDenied) as denied:
        RenderJob(_request(issued.good, issued.still), settings, registry).run()
    decision = denied.value.decision
    assert not decision.allowed and decision.ledger_index is not None
    assert any("revoked" in r for r in decision.reasons)
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())


def test_a_file_sealed_under_a_revoked_grant_stays_refused_under_another(
        issued: Issued, studio: tuple[Settings, Registry]) -> None:
    """The demo performer signs a second grant, then revokes the one the file was sealed
    under: their consent still covers the render, but not this file (re-extract it)."""
    settings, registry = studio
    demo = json.loads(DEMO_GRANT.read_bytes())["signed"]
    demo.update(grant_id="demo-grant-0002", signed_at="2026-11-27T00:00:00Z")
    key = PrivateKey.load(DEMO_GRANT.parent / "demo-performer.key", b"demo-passphrase-public")
    registry.import_grant(sign_draft(Grant, {k: v for k, v in demo.items()
                                             if k not in ("type", "schema_version")},
                                     [key]).to_bytes(), officer="Officer")
    registry.revoke_grant("demo-grant-0001", reason="performer withdrew this one",
                          officer="Officer", performer_request_reference="REQ-8")
    with pytest.raises(MotionSealError, match=r"demo-grant-0001, which is now revoked.*"
                       "re-extract"):
        RenderJob(_request(issued.good, issued.still), settings, registry).run()


@pytest.mark.slow
def test_a_sound_motion_file_renders(issued: Issued, studio: tuple[Settings, Registry]) -> None:
    settings, registry = studio
    outcome = RenderJob(_request(issued.good, issued.still), settings, registry).run()
    assert outcome.frames == 75 and outcome.output.is_file()
    subjects = {(s.technique.value, s.performer_id)
                for s in outcome.decision.request.subjects}
    assert ("performance_driving", "demo-performer") in subjects
    log = (outcome.job_dir / "log.jsonl").read_text()
    assert "motion file seal verified" in log


@pytest.mark.slow
def test_cli_extract_and_refusals(issued: Issued, tmp_path: Path) -> None:
    """`studio motion extract` issues a file; a render given a forged one exits 3 with the
    reason, one given a sound file of another project too."""
    data = tmp_path / "studio-data"
    shutil.copytree(issued.data, data)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data", str(data), *args])
        return result.exit_code, result.output

    out = tmp_path / "take.motion.npz"
    code, text = run("motion", "extract", str(DEMO_SHOT), "--out", str(out), "--project",
                     PROJECT, "--language", "en", "--territory", "FR", "--operator", "Op",
                     "--json")
    assert code == 0, text
    report = json.loads(text)
    assert report["performer_id"] == "demo-performer" and report["grants"] == [
        "demo-grant-0001"]
    assert read_motion_file(out).seal
    arrays = _arrays(out)
    arrays["embeddings"] = arrays["embeddings"][::-1].copy()
    forged = _write(tmp_path / "forged.motion.npz", arrays)
    render = ("render", "reenact", str(issued.still), "--project", PROJECT, "--language", "en",
              "--territory", "FR", "--operator", "Op", "--motion")
    code, text = run(*render, str(forged), "--json")
    assert code == 3, text
    assert json.loads(text)["error"] == "motion.tampered"
    code, text = run(*render[:4], "other-film", *render[5:], str(out))
    assert code == 3 and "extracted for project demo-dub" in text, text
    arrays = _arrays(out)
    del arrays["seal"]
    header = json.loads(arrays["header"].tobytes())
    header.update(version=1, payload_sha256="0" * 64)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    old = _write(tmp_path / "old.motion.npz", arrays)
    code, text = run(*render, str(old), "--json")
    assert code == 3 and "Re-extract it" in json.loads(text)["message"], text
    # Another project, not covered by the grant: the gate denies the extraction (exit 1).
    code, text = run("motion", "extract", str(DEMO_SHOT), "--out", str(tmp_path / "x.npz"),
                     "--project", "other-film", "--language", "en", "--territory", "FR",
                     "--operator", "Op", "--json")
    assert code == 1 and json.loads(text)["error"] == "denied", text
    assert not (tmp_path / "x.npz").exists()
    # An --out folder that does not exist: refused before the gate is asked (exit 4).
    code, text = run("motion", "extract", str(DEMO_SHOT), "--out",
                     str(tmp_path / "nowhere" / "x.npz"), "--project", "demo-dub",
                     "--language", "en", "--territory", "FR", "--operator", "Op", "--json")
    assert code == 4 and "no such folder" in json.loads(text)["message"], text
