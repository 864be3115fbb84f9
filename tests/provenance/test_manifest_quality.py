"""What a studio manifest says about its inputs and about itself (issue 14, failure 8).

What must hold: the studio's own statements (actions, consent, training-mining, soft binding)
are *created* assertions and only the ingredients the SDK writes are gathered; an input that
carries its own manifest is linked by hash (``activeManifest``, ``claimSignature``) and
validated, an altered one is recorded as failing; the script travels as the ingredient's
hashed ``data``, anything too large or unplaced is refused; the consent assertion lists each
grant once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import c2pa  # type: ignore[import-untyped]
import pytest

from studio.provenance.certificates import LocalIdentity
from studio.provenance.manifest import (
    CONSENT_LABEL,
    MAX_EMBEDDED_INGREDIENT,
    ConsentReference,
    IngredientInput,
    ManifestInputError,
    ManifestInputs,
)
from studio.provenance.signing import read_manifest, sha256_file, sign_file
from tests.provenance.test_c2pa import GRID, make_inputs, make_mp4, make_png, make_wav

SCRIPT = "1\n00:00:00,000 --> 00:00:01,000\nBonjour, tout le monde.\n"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    script = d / "script.srt"
    script.write_text(SCRIPT, encoding="utf-8")
    motion = d / "take.motion.npz"
    motion.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    return {
        "clip": make_mp4(GRID / "bbaf2n.mpg", d / "shot.mp4"),
        "ref": make_png(GRID / "bbaf2n.mpg", d / "reference.png"),
        "wav": make_wav(d / "dub.wav"),
        "script": script,
        "motion": motion,
    }


def with_script_and_motion(inputs: ManifestInputs, media: dict[str, Path]) -> ManifestInputs:
    script = IngredientInput("script", "translated script", "inputTo", "text/plain",
                             sha256_file(media["script"]), str(media["script"]), embed=True)
    motion = IngredientInput("motion-file", "driving performance (motion file)", "inputTo",
                             "application/octet-stream", sha256_file(media["motion"]),
                             str(media["motion"]))
    return dataclasses.replace(inputs, others=(*inputs.others, script, motion))


def detailed(path: Path, identity: LocalIdentity) -> dict[str, Any]:
    """The SDK's detailed report: the claim as signed and the assertion store."""
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                "trust": {"user_anchors": identity.root_pem.decode("ascii")}}
    context = c2pa.Context.from_dict(settings)
    try:
        with open(path, "rb") as fh, c2pa.Reader("video/mp4", fh, context=context) as reader:
            report: dict[str, Any] = json.loads(reader.detailed_json())
    finally:
        context.close()
    return report


def embedded_data(path: Path, title: str) -> bytes:
    """The bytes an ingredient's ``data`` link points at, read back through the SDK."""
    with open(path, "rb") as fh, c2pa.Reader("video/mp4", fh) as reader:
        store = json.loads(reader.json())
        ingredient = next(i for i in store["manifests"][store["active_manifest"]]["ingredients"]
                          if i["title"] == title)
        out = io.BytesIO()
        reader.resource_to_stream(ingredient["data"]["identifier"], out)
    return out.getvalue()


def labels_of(refs: list[dict[str, Any]]) -> list[str]:
    return [str(r["url"]).rsplit("/", 1)[-1] for r in refs]


@pytest.fixture(scope="module")
def signed(identity: LocalIdentity, media: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("out") / "shot_fr-FR.mp4"
    sign_file(media["clip"], dest, with_script_and_motion(make_inputs(media), media),
              identity.signing_identity())
    return dest


def test_the_studio_statements_are_created_and_only_ingredients_gathered(
        signed: Path, identity: LocalIdentity) -> None:
    store = detailed(signed, identity)
    claim = store["manifests"][store["active_manifest"]]["claim"]
    created = labels_of(claim["created_assertions"])
    gathered = labels_of(claim["gathered_assertions"])
    assert {"c2pa.actions.v2", CONSENT_LABEL, "cawg.training-mining", "c2pa.soft-binding",
            "c2pa.hash.bmff.v3"} == set(created)
    assert gathered and all(g.startswith(("c2pa.ingredient.v3", "c2pa.embedded-data"))
                            for g in gathered)
    assert len([g for g in gathered if g.startswith("c2pa.ingredient")]) == 5
    assert read_manifest(signed, trust_anchors_pem=identity.root_pem).state == "Trusted"


def test_the_script_travels_as_hashed_data_and_the_motion_file_does_not(
        signed: Path, identity: LocalIdentity, media: dict[str, Path]) -> None:
    store = detailed(signed, identity)
    manifest = store["manifests"][store["active_manifest"]]
    ingredients = {a["dc:title"]: a for label, a in manifest["assertion_store"].items()
                   if label.startswith("c2pa.ingredient")}
    script = ingredients["translated script"]
    assert script["data"]["url"].endswith("c2pa.embedded-data")
    assert len(script["data"]["hash"]) == 44  # a base64 SHA-256: a hashed link, not metadata
    assert embedded_data(signed, "translated script") == SCRIPT.encode()
    motion = ingredients["driving performance (motion file)"]
    assert "data" not in motion
    assert motion["metadata"]["org.consent-dubbing-studio.sha256"] == \
        sha256_file(media["motion"])
    success = store["validation_results"]["activeManifest"]["success"]
    assert any(s["code"] == "assertion.hashedURI.match"
               and s["url"].endswith("c2pa.embedded-data") for s in success)


def test_an_input_that_carries_a_manifest_is_linked_by_hash_and_validated(
        signed: Path, identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    # A second pass over a studio output (say, a re-dub): the first output is the source.
    source = dataclasses.replace(make_inputs(media).source, sha256=sha256_file(signed),
                                 path=str(signed))
    inputs = dataclasses.replace(make_inputs(media), source=source)
    out = sign_file(media["clip"], tmp_path / "second.mp4", inputs,
                    identity.signing_identity())
    report = read_manifest(out.path, trust_anchors_pem=identity.root_pem)
    assert report.state == "Trusted"
    by_title = {i.title: i for i in report.ingredients}
    assert by_title["source shot"].has_manifest
    assert not by_title["performer reference"].has_manifest  # truthfully unknown provenance

    store = detailed(out.path, identity)
    manifest = store["manifests"][store["active_manifest"]]
    parent = next(a for label, a in manifest["assertion_store"].items()
                  if label.startswith("c2pa.ingredient") and a["relationship"] == "parentOf")
    first_label = detailed(signed, identity)["active_manifest"]
    assert parent["activeManifest"]["url"].endswith(first_label)
    assert parent["claimSignature"]["url"].endswith("c2pa.signature")
    assert parent["validationResults"]["activeManifest"]["failure"] == []
    deltas = {d["ingredientAssertionURI"].rsplit("/", 1)[-1]: d["validationDeltas"]
              for d in store["validation_results"]["ingredientDeltas"]}
    delta = deltas["c2pa.ingredient.v3"]  # the source shot's ingredient assertion
    assert "ingredient.manifest.validated" in [s["code"] for s in delta["success"]]
    assert delta["failure"] == []

    # The same input with one changed media byte: still linked, recorded as failing.
    data = bytearray(signed.read_bytes())
    data[data.find(b"mdat") + 4000] ^= 0x01
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    inputs = dataclasses.replace(inputs, source=dataclasses.replace(
        source, sha256=sha256_file(altered), path=str(altered)))
    out = sign_file(media["clip"], tmp_path / "third.mp4", inputs, identity.signing_identity())
    store = detailed(out.path, identity)
    parent = next(a for label, a in
                  store["manifests"][store["active_manifest"]]["assertion_store"].items()
                  if label.startswith("c2pa.ingredient") and a["relationship"] == "parentOf")
    codes = [f["code"] for f in parent["validationResults"]["activeManifest"]["failure"]]
    assert "assertion.bmffHash.mismatch" in codes


def test_embedding_is_refused_when_too_large_or_without_a_file(
        identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ManifestInputError, match="needs its path"):
        IngredientInput("script", "translated script", "inputTo", "text/plain", "0" * 64,
                        embed=True)
    big = tmp_path / "big.srt"
    big.write_bytes(b"x" * (MAX_EMBEDDED_INGREDIENT + 1))
    inputs = dataclasses.replace(make_inputs(media), others=(IngredientInput(
        "script", "translated script", "inputTo", "text/plain", sha256_file(big), str(big),
        embed=True),))
    with pytest.raises(ManifestInputError, match="too large to carry"):
        sign_file(media["clip"], tmp_path / "out.mp4", inputs, identity.signing_identity())
    assert not (tmp_path / "out.mp4").exists()


def test_the_consent_assertion_lists_each_grant_once(media: dict[str, Path]) -> None:
    consent = make_inputs(media).consent
    digest = consent.grant_sha256s[0]
    with pytest.raises(ManifestInputError, match="grant ids repeat"):
        dataclasses.replace(consent, grant_ids=("grant-7f3a", "grant-7f3a"),
                            grant_sha256s=(digest, digest))
    # A manifest signed before grants were listed once reads back with one entry each.
    doubled = consent.to_json()
    doubled["grants"] = doubled["grants"] * 2
    assert ConsentReference.from_json(doubled) == consent
    # Two different documents under one grant id are not a duplicate to drop.
    clash = consent.to_json()
    clash["grants"].append({"id": "grant-7f3a", "sha256": hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(Exception, match="grant ids repeat"):
        ConsentReference.from_json(clash)
