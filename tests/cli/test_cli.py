"""The `studio` command line, end to end on a temporary data folder (SQLite)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from studio.cli import app
from tests.factory import grant_draft

runner = CliRunner()
PASS = "correct horse battery"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `studio init` per module (it enrols the demo face); tests get a copy."""
    d = tmp_path_factory.mktemp("seed") / "data"
    result = runner.invoke(app, ["--data", str(d), "init", "--json"])
    assert result.exit_code == 0, result.output
    return d


@pytest.fixture
def data(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_KEY_PASSPHRASE", PASS)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    d = tmp_path / "data"
    shutil.copytree(seeded, d)
    return d


def run(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data", str(data), *args])
    return result.exit_code, result.output


def run_json(data: Path, *args: str) -> tuple[int, dict]:
    code, output = run(data, *args, "--json")
    return code, json.loads(output)


REQUEST = {
    "request": {"operation": "lipsync", "project_id": "demo-dub", "language": "fr-CA",
                "territory": "CA", "channel": "streaming", "alteration": "mouth_region",
                "operator": "Op One",
                "subjects": [{"performer_id": "demo-performer", "technique": "lip_sync",
                              "track_id": "t1"}]},
    "identity_matches": [{"track_id": "t1", "performer_id": "demo-performer",
                          "distance": 0.3, "threshold": 0.5, "frames": 75}],
}


def write(path: Path, value: object) -> Path:
    path.write_text(yaml.safe_dump(value) if path.suffix == ".yaml" else json.dumps(value))
    return path


def test_init_seeds_demo_and_is_idempotent(data: Path) -> None:
    code, out = run_json(data, "consent", "list")
    assert code == 0
    assert [g["grant_id"] for g in out["grants"]] == ["demo-grant-0001"]
    assert out["grants"][0]["status"] == "active"
    code, again = run_json(data, "init")
    assert code == 0
    assert "demo grant already imported" in again["actions"]
    assert "demo performer's face already enrolled" in again["actions"]
    assert (data / "keys" / "registry-ed25519.pem").stat().st_mode & 0o777 == 0o600


def test_check_allows_then_revocation_denies(data: Path, tmp_path: Path) -> None:
    req = write(tmp_path / "req.yaml", REQUEST)
    code, decision = run_json(data, "consent", "check", str(req))
    assert code == 0 and decision["allowed"] is True
    assert decision["grants_used"][0]["grant_id"] == "demo-grant-0001"

    code, out = run(data, "consent", "revoke", "--grant", "demo-grant-0001", "--officer", "Olga",
                    "--reason", "performer withdrew", "--request-ref", "email 2026-06-01")
    assert code == 0, out
    code, decision = run_json(data, "consent", "check", str(req))
    assert code == 1 and decision["allowed"] is False
    assert any("revoked" in r for r in decision["reasons"])
    code, out = run(data, "consent", "revoke", "--grant", "demo-grant-0001", "--officer", "Olga",
                    "--reason", "again", "--request-ref", "x")
    assert code == 5 and "already revoked" in out


def test_check_denies_out_of_scope_with_a_reason(data: Path, tmp_path: Path) -> None:
    body = json.loads(json.dumps(REQUEST))
    body["request"]["language"] = "ja"
    code, out = run(data, "consent", "check", str(write(tmp_path / "r.json", body)))
    assert code == 1
    assert "DENY" in out and "does not cover language ja" in " ".join(out.split())


def test_performer_flow_keygen_register_sign_import(data: Path, tmp_path: Path) -> None:
    code, out = run_json(data, "consent", "keygen", "perf-a", "--out", str(tmp_path))
    assert code == 0
    assert "ENCRYPTED" in (tmp_path / "perf-a.key").read_text()
    code, out = run(data, "consent", "register", "perf-a", "--legal-name", "Ana Pérez",
                    "--public-key", str(tmp_path / "perf-a.pub"), "--officer", "Olga")
    assert code == 0, out
    draft = grant_draft(valid_until="2036-01-01T00:00:00Z")
    draft_path = write(tmp_path / "draft.yaml", draft)
    signed = tmp_path / "grant.json"
    code, out = run(data, "consent", "sign-grant", str(draft_path), "--key",
                    str(tmp_path / "perf-a.key"), "--out", str(signed))
    assert code == 0, out
    code, out = run_json(data, "consent", "import", str(signed), "--officer", "Olga")
    assert code == 0 and out["grant"]["status"] == "active"
    code, out = run_json(data, "consent", "import", str(signed), "--officer", "Olga")
    assert code == 5 and out["error"] == "registry.duplicate"

    # A signed revocation from the performer's side stops the grant.
    rev = tmp_path / "rev.json"
    code, out = run(data, "consent", "sign-revocation", "perf-a", "--key",
                    str(tmp_path / "perf-a.key"), "--grant", "grant-1", "--reason",
                    "no longer comfortable", "--out", str(rev))
    assert code == 0, out
    code, out = run_json(data, "consent", "import", str(rev), "--officer", "Olga")
    assert code == 0 and out["target"] == {"kind": "grant", "id": "grant-1"}
    code, out = run_json(data, "consent", "list", "--performer", "perf-a")
    assert out["grants"][0]["status"] == "revoked"


@pytest.mark.parametrize(("content", "fragment"), [
    (b"{not json", "malformed JSON"),
    (b'{"signed": {}, "signed": {}, "signatures": []}', "duplicate key"),
    (b'{"signed": {"type": "consent_grant", "schema_version": 9}, "signatures": []}',
     "unsupported schema_version"),
    (b"\x00\xff\xfe", "not UTF-8"),
])
def test_import_rejects_bad_files_with_exit_3(data: Path, tmp_path: Path, content: bytes,
                                              fragment: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, out = run_json(data, "consent", "import", str(bad), "--officer", "Olga")
    assert code == 3
    assert fragment in out["message"]
    code, listing = run_json(data, "consent", "list")
    assert len(listing["grants"]) == 1


def test_import_rejects_huge_file(data: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_bytes(b'{"signed": "' + b"a" * 10_000_000 + b'"}')
    code, out = run_json(data, "consent", "import", str(huge), "--officer", "Olga")
    assert code == 3 and "limit" in out["message"]


def test_unknown_grant_exits_4(data: Path) -> None:
    code, out = run_json(data, "consent", "revoke-report", "no-such-grant")
    assert code == 4 and out["error"] == "registry.not_found"


def test_ledger_checkpoint_prove_verify_and_tamper(data: Path) -> None:
    code, out = run_json(data, "ledger", "checkpoint")
    assert code == 0 and out["checkpoint"].startswith("studio.local/consent-ledger\n")
    size = int(out["checkpoint"].split("\n")[1])
    code, proof = run_json(data, "ledger", "prove", "--index", "1")
    assert code == 0 and proof["tree_size"] == size and proof["entry"]["type"] == "key_added"
    code, cons = run_json(data, "ledger", "prove", "--from", "1", "--to", str(size))
    assert code == 0 and cons["old_size"] == 1
    code, report = run_json(data, "ledger", "verify")
    assert code == 0 and report["ok"] is True

    with sqlite3.connect(data / "studio.db") as db:
        (raw,) = db.execute("SELECT data FROM ledger_entries WHERE idx = 2").fetchone()
        forged = bytes(raw).replace(b"demo-grant-0001", b"demo-grant-0002")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE ledger_entries SET data = ? WHERE idx = 2", (forged,))
        # Whoever holds the file can drop the guard: then verify is what catches the edit.
        db.execute("DROP TRIGGER guard_ledger_entries_update")
        db.execute("UPDATE ledger_entries SET data = ? WHERE idx = 2", (forged,))
    code, out = run(data, "ledger", "verify")
    assert code == 1
    assert "entry 2" in out and "edited" in out


def test_revoke_report_lists_outputs_from_the_ledger(data: Path, tmp_path: Path) -> None:
    from consent.gate import AuthorizationRequest, IdentityMatch
    from studio.bootstrap import open_registry
    from studio.settings import Settings

    registry = open_registry(Settings.from_env(data))
    decision = registry.authorize(AuthorizationRequest.model_validate(REQUEST["request"]),
                                  [IdentityMatch.model_validate(REQUEST["identity_matches"][0])])
    assert decision.allowed
    index = registry.record_output(decision, "ab" * 32, "urn:c2pa:test-manifest")
    registry.store.dispose()
    code, report = run_json(data, "consent", "revoke-report", "demo-grant-0001")
    assert code == 0
    assert report["outputs"] == [{"ledger_index": index, "output_sha256": "ab" * 32,
                                  "manifest_id": "urn:c2pa:test-manifest",
                                  "decision_id": decision.decision_id,
                                  "published_at": report["outputs"][0]["published_at"]}]


GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"


def test_faces_scan_matches_the_enrolled_demo_performer(data: Path) -> None:
    code, out = run_json(data, "faces", "scan", str(GRID / "bbaf2n.mpg"))
    assert code == 0
    (track,) = out["tracks"]
    assert track["match"]["performer_id"] == "demo-performer"
    assert track["frames"] == 75 and out["frame_count"] == 75
    code, out = run_json(data, "faces", "scan", str(GRID / "lbax4n.mpg"))
    assert out["tracks"][0]["match"]["performer_id"] is None


def test_faces_enroll_and_purge_after_revocation(data: Path, tmp_path: Path) -> None:
    code, out = run_json(data, "faces", "enroll", "demo-performer", str(GRID / "bbaf2n.mpg"),
                         "--officer", "Olga", "--per-file", "3")
    assert code == 0 and out["templates"] == 3
    not_media = tmp_path / "notes.txt"
    not_media.write_text("not a video")
    code, out = run_json(data, "faces", "enroll", "demo-performer", str(not_media),
                         "--officer", "Olga")
    assert code == 3
    code, out = run(data, "consent", "revoke", "--grant", "demo-grant-0001", "--officer", "Olga",
                    "--reason", "withdrawn", "--request-ref", "letter")
    assert code == 0
    code, out = run_json(data, "faces", "scan", str(GRID / "bbaf2n.mpg"))
    assert out["tracks"][0]["match"]["performer_id"] is None  # templates were deleted


def test_check_with_video_uses_the_identity_of_the_face_in_the_shot(data: Path,
                                                                    tmp_path: Path) -> None:
    req = write(tmp_path / "req.yaml", {"request": REQUEST["request"]})
    code, decision = run_json(data, "consent", "check", str(req), "--video",
                              str(GRID / "bbaf2n.mpg"))
    assert code == 0 and decision["allowed"] is True
    assert decision["identities"][0]["performer_id"] == "demo-performer"
    # The same grant, someone else's face: denied.
    code, decision = run_json(data, "consent", "check", str(req), "--video",
                              str(GRID / "lbax4n.mpg"))
    assert code == 1
    assert any("face t1 matches no enrolled performer" in r for r in decision["reasons"])
    code, out = run_json(data, "consent", "check", str(write(tmp_path / "both.yaml", REQUEST)),
                         "--video", str(GRID / "bbaf2n.mpg"))
    assert code == 3 and "not both" in out["message"]


def test_a_configured_insightface_folder_without_its_model_is_a_clear_error(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "arcface"
    models.mkdir()
    monkeypatch.setenv("STUDIO_INSIGHTFACE_DIR", str(models))
    code, out = run_json(data, "faces", "scan", str(GRID / "bbaf2n.mpg"))
    assert code == 3
    assert "w600k_r50.onnx" in out["message"] and str(models) in out["message"]


def test_bad_input_and_usage_have_their_exit_codes(data: Path) -> None:
    """Issue 15: a file that is not media is rejected (3, no traceback); a usage mistake is 2."""
    code, out = run_json(data, "render", "lipsync", "/etc/passwd", "--project", "demo-dub",
                         "--language", "fr", "--territory", "FR", "--operator", "Op",
                         "--dub", str(GRID / "brbk7n.mpg"))
    assert code == 3 and "not an audio or video file" in out["message"]
    code, text = run(data, "render", "lipsync", "/etc/passwd", "--project", "demo-dub",
                     "--language", "fr", "--territory", "FR", "--operator", "Op",
                     "--dub", str(GRID / "brbk7n.mpg"))
    assert code == 3 and "Traceback" not in text
    code, out = run_json(data, "consent", "revoke", "--grant", "a", "--key", "b",
                         "--officer", "Olga", "--reason", "r", "--request-ref", "x")
    assert code == 2 and "exactly one of --grant or --key" in out["message"]
    code, out = run_json(data, "consent", "sign-revocation", "demo-performer", "--key", "k",
                         "--out", "r.json", "--reason", "r")
    assert code == 2 and "exactly one of --grant or --revoke-key" in out["message"]


def test_list_shows_what_the_gate_says_of_a_minors_own_signature(data: Path,
                                                                 tmp_path: Path) -> None:
    code, _ = run_json(data, "consent", "keygen", "kid-a", "--out", str(tmp_path))
    assert code == 0
    code, out = run(data, "consent", "register", "kid-a", "--legal-name", "Kid A",
                    "--public-key", str(tmp_path / "kid-a.pub"), "--officer", "Olga",
                    "--minor-until", "2040-01-01")
    assert code == 0, out
    draft = grant_draft("kid-a", "kid-grant-1", valid_until="2036-01-01T00:00:00Z")
    signed = tmp_path / "kid-grant.json"
    code, out = run(data, "consent", "sign-grant", str(write(tmp_path / "kid.yaml", draft)),
                    "--key", str(tmp_path / "kid-a.key"), "--out", str(signed))
    assert code == 0, out
    code, out = run_json(data, "consent", "import", str(signed), "--officer", "Olga")
    assert code == 0, out
    code, out = run_json(data, "consent", "list", "--performer", "kid-a")
    (grant,) = out["grants"]
    assert grant["status"] == "not_usable"
    assert "minor until 2040-01-01" in grant["detail"] and "guardian" in grant["detail"]


def test_a_render_after_a_revocation_says_why_the_face_is_unknown(data: Path) -> None:
    """A revocation deletes the performer's templates (CONSENT.md), so the face is no longer
    recognised: the refusal says so instead of only "no face matches", exits 3, and is a
    deny decision in the ledger (issue 15: it used to leave no record)."""
    code, out = run(data, "consent", "revoke", "--grant", "demo-grant-0001", "--officer", "Olga",
                    "--reason", "performer withdrew", "--request-ref", "email 7")
    assert code == 0, out
    code, out = run_json(data, "render", "lipsync", str(GRID / "bbaf2n.mpg"), "--project",
                         "demo-dub", "--language", "fr", "--territory", "FR", "--operator",
                         "Op", "--dub", str(GRID / "brbk7n.mpg"))
    assert code == 3, out
    assert "no face in the shot matches an enrolled performer" in out["message"]
    assert "whose grants were all revoked has had their face templates deleted" in out["message"]
    # A refusal of record: a deny decision in the ledger whose one rule says why.
    decision = out["decision"]
    assert decision["allowed"] is False and decision["ledger_index"] is not None
    assert decision["request"]["subjects"] == []
    assert "no face in the shot matches" in decision["reasons"][0]
    code, proof = run_json(data, "ledger", "prove", "--index", str(decision["ledger_index"]))
    assert code == 0 and proof["entry"]["decision_id"] == decision["decision_id"]
    assert proof["entry"]["allowed"] is False
    code, report = run_json(data, "ledger", "verify")
    assert code == 0 and report["ok"], report


@pytest.mark.parametrize(("name", "value"), [
    ("STUDIO_IDENTITY_GAP_S", "5"), ("STUDIO_IDENTITY_GAP_S", "nan"),
    ("STUDIO_RENDER_CRF", "abc"), ("STUDIO_CONCURRENT_RENDERS", "0")])
def test_a_bad_environment_setting_is_a_usage_error(
        data: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    code, output = run(data, "ledger", "verify")
    assert code == 2, output
    assert name in output
    assert "Traceback" not in output
