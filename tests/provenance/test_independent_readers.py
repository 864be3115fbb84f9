"""Studio outputs checked by two C2PA implementations the studio does not sign with.

The studio signs and reads with c2pa-rs (through c2pa-python). A manifest that c2pa-rs
accepts but the standard does not would pass every other test, so the same outputs go to:

- ``@trustnxt/c2pa-ts``, a pure-TypeScript implementation, run with node
  (``tests/readers/validate.mjs``; installed by ``make setup`` from the lockfile);
- ``encypher-c2pa``, a verification-only SDK with its own Rust core (a dev dependency),
  offline and with telemetry off.

What must hold in both: a studio output validates (claim signature, every hashed link,
the BMFF hash binding), and one flipped media byte or one changed byte in the consent
assertion is caught. encypher also checks trust against the studio root only, and that an
MP4 sidecar manifest validates with its own file and not with another.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from studio.provenance.certificates import LocalIdentity
from studio.provenance.signing import sha256_file, sign_file
from tests.provenance.test_c2pa import GRID, make_inputs, make_mp4, make_png, make_wav
from tests.provenance.test_manifest_quality import with_script_and_motion

READERS = Path(__file__).resolve().parents[1] / "readers"


@pytest.fixture(scope="module")
def outputs(identity: LocalIdentity, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Path]:
    """A studio output, a second one whose source is the first, and two tampered copies."""
    d = tmp_path_factory.mktemp("readers")
    (d / "script.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nBonjour.\n")
    (d / "take.motion.npz").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    media = {"clip": make_mp4(GRID / "bbaf2n.mpg", d / "shot.mp4"),
             "ref": make_png(GRID / "bbaf2n.mpg", d / "reference.png"),
             "wav": make_wav(d / "dub.wav"), "script": d / "script.srt",
             "motion": d / "take.motion.npz"}
    first = d / "shot_fr-FR.mp4"
    sign_file(media["clip"], first, with_script_and_motion(make_inputs(media), media),
              identity.signing_identity())
    inputs = make_inputs(media)
    second = d / "shot_de-DE.mp4"
    sign_file(media["clip"], second, dataclasses.replace(inputs, source=dataclasses.replace(
        inputs.source, sha256=sha256_file(first), path=str(first))),
        identity.signing_identity())

    data = bytearray(first.read_bytes())
    media_byte = bytearray(data)
    media_byte[data.find(b"mdat") + 4000] ^= 0x01
    (d / "media_byte.mp4").write_bytes(bytes(media_byte))
    consent_byte = bytearray(data)
    at = data.find(b"grant-7f3a")  # the grant id inside the consent assertion
    assert at > 0 and data.count(b"grant-7f3a") == 1
    consent_byte[at + len("grant-")] ^= 0x01
    (d / "consent_byte.mp4").write_bytes(bytes(consent_byte))
    return {"first": first, "second": second, "media_byte": d / "media_byte.mp4",
            "consent_byte": d / "consent_byte.mp4"}


# --------------------------------------------------------------------------------------
# @trustnxt/c2pa-ts (TypeScript)


def c2pa_ts(*files: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (READERS / "node_modules" / "@trustnxt" / "c2pa-ts").is_dir():
        pytest.fail("the TypeScript reader is not installed: run `make setup` (needs node and "
                    "npm; installs tests/readers from its lockfile)")
    done = subprocess.run([node, str(READERS / "validate.mjs"), *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def codes(report: dict[str, Any], *, success: bool) -> list[str]:
    return [e["code"] for e in report["entries"] if e["success"] is success]


def test_the_typescript_reader_validates_studio_outputs(outputs: dict[str, Path]) -> None:
    for report in c2pa_ts(outputs["first"], outputs["second"]):
        assert report["format"] == "video/mp4"
        assert report["valid"] is True, report["entries"]
        assert codes(report, success=False) == []
        ok = codes(report, success=True)
        assert "claimSignature.validated" in ok
        assert "assertion.bmffHash.match" in ok
        # every assertion the claim lists, created and gathered, matched its hashed link
        linked = [e["url"].rsplit("/", 1)[-1] for e in report["entries"]
                  if e["code"] == "assertion.hashedURI.match"]
        assert {"c2pa.actions.v2", "org.consent-dubbing-studio.consent", "c2pa.soft-binding",
                "c2pa.hash.bmff.v3", "c2pa.ingredient.v3"} <= set(linked)
    first = c2pa_ts(outputs["first"])[0]
    assert "c2pa.embedded-data" in {e["url"].rsplit("/", 1)[-1] for e in first["entries"]
                                    if e["code"] == "assertion.hashedURI.match"}


def test_the_typescript_reader_catches_one_flipped_byte(outputs: dict[str, Path]) -> None:
    media_byte, consent_byte = c2pa_ts(outputs["media_byte"], outputs["consent_byte"])
    assert media_byte["valid"] is False
    assert codes(media_byte, success=False) == ["assertion.bmffHash.mismatch"]
    assert consent_byte["valid"] is False
    assert "assertion.hashedURI.mismatch" in codes(consent_byte, success=False)


# --------------------------------------------------------------------------------------
# encypher-c2pa (its own Rust core)


def encypher_verify(path: Path, root_pem: bytes | None, *, sidecar: Path | None = None,
                    strict: bool = False) -> dict[str, Any]:
    """encypher-c2pa's report on ``path`` (or on ``path`` with its ``sidecar`` manifest),
    trusting ``root_pem`` only (or nothing).

    Offline and without telemetry: both are switched off through its environment variables
    (so it saves no preference either), and the report must show no network request.
    """
    os.environ["ENCYPHER_C2PA_TELEMETRY"] = "off"
    os.environ["ENCYPHER_C2PA_ONLINE"] = "off"
    import encypher_c2pa  # type: ignore[import-not-found,unused-ignore]

    options: dict[str, Any] = {"trust_pem": root_pem.decode("ascii")} if root_pem else {}
    if sidecar is not None:
        options["manifest_store"] = str(sidecar)
    report: dict[str, Any] = encypher_c2pa.verify(str(path), "video/mp4", online=False,
                                                  no_default_trust=True,
                                                  strict_conformance=strict, **options)
    assert report["network"] == {"enabled": False, "needed": [], "requests": []}
    return report


def test_encypher_validates_studio_outputs_and_trusts_only_the_studio_root(
        outputs: dict[str, Path], identity: LocalIdentity) -> None:
    for name in ("first", "second"):
        report = encypher_verify(outputs[name], identity.root_pem)
        assert (report["integrity"], report["signature"], report["hard_binding"]) == \
            ("valid", "valid", "match"), report["validation_results"]
        assert report["validation_state"] == "Trusted"
        assert report["validation_results"]["failure"] == []
    second = encypher_verify(outputs["second"], identity.root_pem)
    assert "ingredient.manifest.validated" in \
        [s["code"] for s in second["validation_results"]["success"]]

    untrusted = encypher_verify(outputs["first"], None)
    assert untrusted["integrity"] == "valid"
    assert untrusted["validation_state"] != "Trusted"


def test_under_the_conformance_program_only_deployment_duties_are_missing(
        outputs: dict[str, Path], identity: LocalIdentity) -> None:
    # The C2PA 2.4 Conformance Program posture: any structural fault in the manifest would show
    # here. What it misses is the deployment's to add: an RFC 3161 time stamp
    # (STUDIO_C2PA_TSA_URL) and revocation information for the signing certificate.
    for name in ("first", "second"):
        report = encypher_verify(outputs[name], identity.root_pem, strict=True)
        assert report["integrity"] == "valid"
        assert {f["code"] for f in report["validation_results"]["failure"]} == {
            "com.encypher.conformance.trustedTimeStampMissing",
            "com.encypher.conformance.revocationInformationMissing"}


def test_encypher_catches_one_flipped_byte(outputs: dict[str, Path],
                                           identity: LocalIdentity) -> None:
    media_byte = encypher_verify(outputs["media_byte"], identity.root_pem)
    assert (media_byte["integrity"], media_byte["hard_binding"]) == ("invalid", "mismatch")
    assert media_byte["validation_state"] == "Invalid"
    consent_byte = encypher_verify(outputs["consent_byte"], identity.root_pem)
    assert consent_byte["integrity"] == "invalid"
    assert "assertion.hashedURI.mismatch" in \
        [f["code"] for f in consent_byte["validation_results"]["failure"]]


def test_encypher_binds_a_sidecar_to_its_file_only(identity: LocalIdentity,
                                                   tmp_path: Path) -> None:
    media = {"clip": make_mp4(GRID / "bbaf2n.mpg", tmp_path / "shot.mp4"),
             "ref": make_png(GRID / "bbaf2n.mpg", tmp_path / "reference.png"),
             "wav": make_wav(tmp_path / "dub.wav")}
    master = tmp_path / "master.mp4"
    master.write_bytes(media["clip"].read_bytes())
    out = sign_file(master, master, make_inputs(media), identity.signing_identity(),
                    sidecar=True)
    assert out.sidecar_path is not None
    report = encypher_verify(master, identity.root_pem, sidecar=out.sidecar_path)
    assert (report["integrity"], report["hard_binding"], report["validation_state"]) == \
        ("valid", "match", "Trusted")
    other = make_mp4(GRID / "brbk7n.mpg", tmp_path / "other.mp4")
    report = encypher_verify(other, identity.root_pem, sidecar=out.sidecar_path)
    assert (report["integrity"], report["hard_binding"]) == ("invalid", "mismatch")
