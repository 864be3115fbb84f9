"""C2PA signing and verification on real media (a GRID clip cut to one second of H.264).

What must hold: a studio-signed output reads ``Trusted`` with the studio root as anchor and
``Valid`` (untrusted, said plainly) without it; everything the manifest states comes back;
one flipped media byte, a manifest moved onto another file, or a sidecar used with the wrong
file reads ``Invalid``; a file with no manifest raises ``NoManifestError``; containers the SDK
cannot embed into get a sidecar bound to every byte of the file; an HSM-style callback signs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from studio.provenance.certificates import (
    C2PA_CLAIM_SIGNING_EKU,
    CHAIN_FILE,
    KEY_FILE,
    ROOT_FILE,
    LocalIdentity,
    SigningIdentity,
    create_local_identity,
    ecdsa_callback,
    ensure_local_identity,
)
from studio.provenance.manifest import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    CONSENT_LABEL,
    CertificateError,
    ChangedRegion,
    ConsentReference,
    IngredientInput,
    LanguagePair,
    ManifestInputError,
    ManifestInputs,
    Rect,
    SoftwareAgent,
    WatermarkBinding,
    build_manifest_definition,
)
from studio.provenance.signing import (
    NoManifestError,
    SigningError,
    detect_mime,
    read_manifest,
    sha256_file,
    sidecar_path_for,
    sign_file,
)

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"
PAYLOAD = 0x5EED_C0DE

# --------------------------------------------------------------------------------------
# Real media


def make_mp4(src: Path, dest: Path, frames: int = 25, crf: int = 28) -> Path:
    """Transcode the first ``frames`` frames of ``src`` to H.264 in MP4."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        stream.codec_context.options = {"crf": str(crf), "preset": "ultrafast"}
        for n, frame in enumerate(inp.decode(vin)):
            if n >= frames:
                break
            yuv = frame.reformat(format="yuv420p")
            yuv.pts = None
            out.mux(stream.encode(yuv))
        out.mux(stream.encode())
    return dest


def remux(src: Path, dest: Path) -> Path:
    """Copy the video packets of ``src`` into another container (drops any manifest)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    return dest


def make_png(src: Path, dest: Path) -> Path:
    with av.open(str(src)) as inp:
        frame = next(inp.decode(video=0))
        frame.to_image().crop((120, 40, 248, 168)).save(dest)
    return dest


def make_wav(dest: Path, seconds: float = 1.0) -> Path:
    rate = 16_000
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)[None, :]
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return dest


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the top-level boxes of an MP4."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        boxes.append((data[offset + 4:offset + 8], offset, size))
        offset += size
    return boxes


# --------------------------------------------------------------------------------------
# Fixtures (module scope: one identity and one set of media for the whole file)


def make_inputs(media: dict[str, Path], *, mime: str = "video/mp4",
                watermark: bool = True) -> ManifestInputs:
    return ManifestInputs(
        title="shot_fr-FR.mp4",
        mime=mime,
        operation="lipsync",
        agent=SoftwareAgent("consent-dubbing-studio", "0.1.0", "wav2lip", "wav2lip_gan.pth",
                            "research-only (non-commercial)"),
        source=IngredientInput("source-shot", "source shot", "parentOf", "video/mp4",
                               sha256_file(media["clip"]), str(media["clip"])),
        others=(
            IngredientInput("performer-reference", "performer reference", "inputTo",
                            "image/png", sha256_file(media["ref"]), str(media["ref"])),
            IngredientInput("dub-audio", "dub audio (fr-FR)", "componentOf", "audio/wav",
                            sha256_file(media["wav"]), str(media["wav"])),
        ),
        languages=LanguagePair("en-GB", "fr-FR"),
        regions=(ChangedRegion(Rect(140, 150, 80, 48), frames=(0, 24), seconds=(0.0, 0.96),
                               description="mouth"),),
        consent=ConsentReference(
            grant_ids=("grant-7f3a",), grant_sha256s=(hashlib.sha256(b"grant").hexdigest(),),
            decision_id="decision-19c2", decision_leaf_index=41,
            ledger_checkpoint="studio.local/consent-ledger\n42\nq2Yv3m0=\n\n— studio.local x\n",
            ledger_checkpoint_sha256=hashlib.sha256(b"checkpoint").hexdigest(),
            registry_key_id=hashlib.sha256(b"registry key").hexdigest()),
        watermark=WatermarkBinding(PAYLOAD, 1000) if watermark else None,
    )


@pytest.fixture(scope="module")
def signed(identity: LocalIdentity, media: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("out") / "shot_fr-FR.mp4"
    sign_file(media["clip"], dest, make_inputs(media), identity.signing_identity())
    return dest


# --------------------------------------------------------------------------------------
# Certificates


def test_local_identity_meets_the_sdk_rules(identity: LocalIdentity) -> None:
    root, leaf = identity.root, identity.certificate
    assert [p.name for p in sorted(identity.directory.iterdir())] == sorted(
        [ROOT_FILE, CHAIN_FILE, KEY_FILE])
    assert identity.key_path.stat().st_mode & 0o777 == 0o600
    assert len(x509.load_pem_x509_certificates(identity.chain_path.read_bytes())) == 1
    # root: self-signed CA that may sign certificates, 30 years
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert root.issuer == root.subject
    assert (root.not_valid_after_utc - root.not_valid_before_utc).days >= 30 * 365
    # signer: v3 end entity, AKI/SKI, digitalSignature only, both EKUs, O=, P-256, 10 years
    assert leaf.version == x509.Version.v3
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING_EKU}
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "Test Dubbing Studio"
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days >= 10 * 365
    leaf.verify_directly_issued_by(root)


def test_ensure_local_identity_loads_what_exists(tmp_path: Path) -> None:
    first = ensure_local_identity(tmp_path / "id")
    again = ensure_local_identity(tmp_path / "id")
    assert again.chain_pem == first.chain_pem and again.root_pem == first.root_pem
    with pytest.raises(CertificateError, match="refusing to replace"):
        create_local_identity(tmp_path / "id")
    (tmp_path / "id" / ROOT_FILE).unlink()
    with pytest.raises(CertificateError, match=f"{ROOT_FILE} missing"):
        ensure_local_identity(tmp_path / "id")


def _leaf(issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          ekus: list[x509.ObjectIdentifier], *, ca: bool = False
          ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Op"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "op signer")]))
        .issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, ca, False, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_certificates_the_sdk_or_validators_would_refuse_are_refused_early() -> None:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "op root")])
    trap, key = _leaf(issuer_key, issuer, [C2PA_CLAIM_SIGNING_EKU])
    with pytest.raises(CertificateError, match="emailProtection"):
        SigningIdentity(chain_pem=trap, key_pem=_pkcs8(key))
    ca, key = _leaf(issuer_key, issuer, [ExtendedKeyUsageOID.EMAIL_PROTECTION], ca=True)
    with pytest.raises(CertificateError, match="CA certificate"):
        SigningIdentity(chain_pem=ca, key_pem=_pkcs8(key))
    good, _ = _leaf(issuer_key, issuer, [ExtendedKeyUsageOID.EMAIL_PROTECTION])
    with pytest.raises(CertificateError, match="does not belong"):
        SigningIdentity(chain_pem=good, key_pem=_pkcs8(issuer_key))
    with pytest.raises(CertificateError, match="exactly one"):
        SigningIdentity(chain_pem=good)


# --------------------------------------------------------------------------------------
# The manifest definition (pure)


def test_definition_states_the_dub(media: dict[str, Path]) -> None:
    definition = build_manifest_definition(make_inputs(media))
    assert json.loads(json.dumps(definition)) == definition  # plain JSON
    by_label = {a["label"]: a["data"] for a in definition["assertions"]}
    actions = [a["action"] for a in by_label["c2pa.actions"]["actions"]]
    assert actions == ["c2pa.opened", "c2pa.translated", "c2pa.edited",
                       "c2pa.watermarked.bound"]
    assert by_label["c2pa.soft-binding"]["blocks"][0]["scope"]["timespan"] == \
        {"start": 0, "end": 1000}
    assert set(by_label) == {"c2pa.actions", CONSENT_LABEL, "cawg.training-mining",
                             "c2pa.soft-binding"}
    assert "thumbnail" not in json.dumps(definition)
    unmarked = build_manifest_definition(make_inputs(media, watermark=False))
    assert "c2pa.soft-binding" not in json.dumps(unmarked)
    assert "c2pa.watermarked.bound" not in json.dumps(unmarked)


@pytest.mark.parametrize(("change", "message"), [
    ({"languages": "bad"}, None),
    ({"operation": "faceswap"}, "lipsync"),
    ({"mime": "mp4"}, "MIME"),
])
def test_definition_refuses_bad_inputs(media: dict[str, Path], change: dict[str, object],
                                       message: str | None) -> None:
    inputs = make_inputs(media)
    if change.get("languages") == "bad":
        with pytest.raises(ManifestInputError, match="BCP-47"):
            LanguagePair("english", "fr_FR")
        with pytest.raises(ManifestInputError, match="not a dub"):
            LanguagePair("fr", "FR")
        return
    with pytest.raises(ManifestInputError, match=message or ""):
        dataclasses.replace(inputs, **change)  # type: ignore[arg-type]


def test_inputs_refuse_a_second_parent_and_bad_payloads(media: dict[str, Path]) -> None:
    inputs = make_inputs(media)
    with pytest.raises(ManifestInputError, match="only the source shot"):
        dataclasses.replace(inputs, others=(dataclasses.replace(inputs.source, label="x"),))
    with pytest.raises(ManifestInputError, match="32-bit"):
        WatermarkBinding(1 << 32, 1000)


# --------------------------------------------------------------------------------------
# Signing and reading


def test_signed_mp4_is_trusted_with_the_studio_root_and_valid_without(
        signed: Path, identity: LocalIdentity) -> None:
    trusted = read_manifest(signed, trust_anchors_pem=identity.root_pem)
    assert trusted.state == "Trusted"
    assert trusted.embedded and trusted.failures == ()
    assert trusted.trusted_via == "user_anchors"
    assert trusted.on_public_trust_list is False
    assert "NOT on the C2PA public trust list" in trusted.trust_note
    assert trusted.signer.organisation == "Test Dubbing Studio"
    assert trusted.signer.issuer == "Test Dubbing Studio"
    assert trusted.signer.common_name == "Test Dubbing Studio C2PA Signer"

    untrusted = read_manifest(signed)
    assert untrusted.state == "Valid"
    assert "signingCredential.untrusted" in untrusted.failure_codes
    assert untrusted.trust_note.startswith("NOT trusted")


def test_everything_the_manifest_states_comes_back(
        signed: Path, identity: LocalIdentity, media: dict[str, Path]) -> None:
    report = read_manifest(signed, trust_anchors_pem=identity.root_pem)
    assert [a.action for a in report.actions] == [
        "c2pa.opened", "c2pa.translated", "c2pa.edited", "c2pa.watermarked.bound"]
    opened = report.action("c2pa.opened")
    assert opened is not None and opened.ingredients == ("source shot",)
    translated = report.action("c2pa.translated")
    assert translated is not None
    assert (translated.source_language, translated.target_language) == ("en-GB", "fr-FR")
    assert translated.ingredients == ("dub audio (fr-FR)",)
    edited = report.action("c2pa.edited")
    assert edited is not None
    assert edited.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert edited.software_agent is not None
    assert edited.software_agent["name"] == "consent-dubbing-studio"
    assert edited.software_agent["org.consent-dubbing-studio.backend"] == "wav2lip"
    assert edited.software_agent["org.consent-dubbing-studio.licence"].startswith("research")
    assert set(edited.ingredients) == {"performer reference", "dub audio (fr-FR)"}
    (change,) = edited.changes
    kinds = {r["type"]: r for r in change["region"]}
    assert kinds["frame"]["frame"] == {"start": 0, "end": 24}
    assert kinds["temporal"]["time"]["end"] == "0.96"
    shape = kinds["spatial"]["shape"]
    assert (shape["origin"]["x"], shape["origin"]["y"], shape["width"], shape["height"]) == \
        (140, 150, 80, 48)

    ingredients = {i.title: i for i in report.ingredients}
    assert ingredients["source shot"].relationship == "parentOf"
    assert ingredients["source shot"].sha256 == sha256_file(media["clip"])
    assert ingredients["performer reference"].sha256 == sha256_file(media["ref"])
    assert ingredients["dub audio (fr-FR)"].relationship == "componentOf"

    assert report.consent == make_inputs(media).consent
    assert report.soft_binding is not None
    assert report.soft_binding.payload == PAYLOAD
    assert report.soft_binding.payload_hex == "5eedc0de"
    assert (report.soft_binding.start_ms, report.soft_binding.end_ms) == (0, 1000)
    assert set(report.training_mining.values()) == {"notAllowed"}
    assert len(report.training_mining) == 4
    labels = {a["label"] for m in report.raw["manifests"].values() for a in m["assertions"]}
    assert not any("thumbnail" in label for label in labels)
    assert "Trusted" in report.describe()


def test_one_flipped_byte_in_mdat_is_invalid(signed: Path, identity: LocalIdentity,
                                             tmp_path: Path) -> None:
    data = bytearray(signed.read_bytes())
    (_, offset, size), = [b for b in top_level_boxes(bytes(data)) if b[0] == b"mdat"]
    data[offset + size // 2] ^= 0x01
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    report = read_manifest(tampered, trust_anchors_pem=identity.root_pem)
    assert report.state == "Invalid"
    assert "assertion.bmffHash.mismatch" in report.failure_codes


def test_a_manifest_moved_onto_another_file_is_invalid(
        signed: Path, identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    data = signed.read_bytes()
    (_, offset, size), = [b for b in top_level_boxes(data) if b[0] == b"uuid"]
    uuid_box = data[offset:offset + size]
    other = media["other"].read_bytes()
    (_, ftyp_off, ftyp_size), = [b for b in top_level_boxes(other) if b[0] == b"ftyp"]
    cut = ftyp_off + ftyp_size
    forged = tmp_path / "forged.mp4"
    forged.write_bytes(other[:cut] + uuid_box + other[cut:])
    report = read_manifest(forged, trust_anchors_pem=identity.root_pem)
    assert report.state == "Invalid"
    assert "assertion.bmffHash.mismatch" in report.failure_codes

    # a sidecar made for one file, presented with another
    lifted = sign_file(media["clip"], tmp_path / "side.mp4", make_inputs(media),
                       identity.signing_identity(), sidecar=True)
    assert lifted.sidecar_path is not None
    report = read_manifest(media["other"], trust_anchors_pem=identity.root_pem,
                           sidecar=lifted.sidecar_path)
    assert report.state == "Invalid"


def test_a_file_without_a_manifest_raises(media: dict[str, Path]) -> None:
    with pytest.raises(NoManifestError, match="carries no C2PA manifest"):
        read_manifest(media["clip"])
    with pytest.raises(NoManifestError, match="cannot carry an embedded manifest"):
        read_manifest(media["mkv"])


def test_mkv_gets_a_sidecar_bound_to_every_byte(identity: LocalIdentity,
                                                media: dict[str, Path], tmp_path: Path) -> None:
    assert detect_mime(media["mkv"]) == "video/x-matroska"
    before = media["mkv"].read_bytes()
    dest = tmp_path / "shot_fr-FR.mkv"
    out = sign_file(media["mkv"], dest, make_inputs(media, mime="video/x-matroska"),
                    identity.signing_identity())
    assert not out.embedded and out.sidecar_path == sidecar_path_for(dest)
    assert dest.read_bytes() == before == media["mkv"].read_bytes()
    assert out.sidecar_path.read_bytes() == out.manifest_bytes
    report = read_manifest(dest, trust_anchors_pem=identity.root_pem)  # finds the sidecar
    assert report.state == "Trusted" and not report.embedded
    assert report.soft_binding is not None and report.soft_binding.payload == PAYLOAD

    altered = bytearray(before)
    altered[len(altered) // 2] ^= 0x01
    dest.write_bytes(bytes(altered))
    report = read_manifest(dest, trust_anchors_pem=identity.root_pem)
    assert report.state == "Invalid"
    assert "assertion.dataHash.mismatch" in report.failure_codes


def test_mp4_sidecar_on_request_leaves_the_media_untouched(
        identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "copy.mp4"
    dest.write_bytes(media["clip"].read_bytes())
    out = sign_file(dest, dest, make_inputs(media), identity.signing_identity(), sidecar=True)
    assert out.sha256 == sha256_file(media["clip"])
    assert out.sidecar_path is not None and out.sidecar_path.exists()
    report = read_manifest(dest, trust_anchors_pem=identity.root_pem,
                           sidecar=out.sidecar_path)
    assert report.state == "Trusted"
    with pytest.raises(NoManifestError):
        read_manifest(dest, sidecar=tmp_path / "missing.c2pa")


def test_a_callback_signer_signs_like_a_key_in_an_hsm(
        identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    calls: list[int] = []
    inner = ecdsa_callback(key)

    def hsm(data: bytes) -> bytes:
        calls.append(len(data))
        signature = inner(data)
        assert len(signature) == 64  # raw r‖s, not DER
        return signature

    hsm_identity = SigningIdentity(chain_pem=identity.chain_pem, sign_callback=hsm,
                                   trust_anchors_pem=identity.root_pem)
    out = sign_file(media["clip"], tmp_path / "hsm.mp4", make_inputs(media), hsm_identity)
    assert calls
    report = read_manifest(out.path, trust_anchors_pem=hsm_identity.trust_anchors_pem)
    assert report.state == "Trusted"

    broken = dataclasses.replace(hsm_identity, sign_callback=lambda data: b"\x00" * 64)
    with pytest.raises(SigningError, match="refused to sign"):
        sign_file(media["clip"], tmp_path / "broken.mp4", make_inputs(media), broken)
    assert not (tmp_path / "broken.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_inputs_must_match_the_file(identity: LocalIdentity, media: dict[str, Path],
                                    tmp_path: Path) -> None:
    with pytest.raises(ManifestInputError, match="video/x-matroska by its content"):
        sign_file(media["mkv"], tmp_path / "x.mkv", make_inputs(media),
                  identity.signing_identity())
    changed = dataclasses.replace(make_inputs(media), source=dataclasses.replace(
        make_inputs(media).source, sha256="0" * 64))
    with pytest.raises(ManifestInputError, match="changed after the render"):
        sign_file(media["clip"], tmp_path / "y.mp4", changed, identity.signing_identity())
