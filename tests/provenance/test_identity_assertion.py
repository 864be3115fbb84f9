"""A CAWG identity assertion naming the studio (``STUDIO_CAWG_CHAIN`` + ``STUDIO_CAWG_KEY``).

Signed on real media (a GRID clip) with the studio's claim signer plus an X.509 identity
credential of a test "organisation" CA (emailProtection EKU, S/MIME organisation-validated
policy): the manifest carries one ``cawg.identity`` assertion that names the credential's
subject as ``cawg.editor`` and references the actions, the consent assertion and the hard
binding; its signature validates. No CAWG trust list knows the test CA, so the credential
reads as untrusted and the SDK's verdict for the whole manifest drops from Trusted to Valid:
why the assertion is off by default. Without a credential nothing changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from studio.provenance.certificates import (
    IdentityCredential,
    LocalIdentity,
    SigningIdentity,
    ecdsa_callback,
)
from studio.provenance.identity import signing_identity
from studio.provenance.manifest import CONSENT_LABEL, CertificateError
from studio.provenance.signing import read_manifest, sign_file
from studio.settings import Settings
from tests.provenance.test_c2pa import make_inputs

SMIME_ORGANISATION_VALIDATED = x509.ObjectIdentifier("2.23.140.1.5.2.2")


def _credential(organisation: str, ekus: list[x509.ObjectIdentifier], *,
                valid_days: tuple[int, int] = (-1, 30), key_id: bool = True
                ) -> tuple[bytes, bytes, bytes]:
    """(chain, key, root) of an identity credential issued by a fresh CA, valid from
    ``valid_days[0]`` to ``valid_days[1]`` days from now, with an Authority Key Identifier
    unless ``key_id`` is false."""
    now = dt.datetime.now(dt.UTC)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test S/MIME CA"),
                           x509.NameAttribute(NameOID.COMMON_NAME, "Test S/MIME Root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    builder = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, organisation)]))
            .issuer_name(root_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=valid_days[0]))
            .not_valid_after(now + dt.timedelta(days=valid_days[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
            .add_extension(x509.CertificatePolicies([
                x509.PolicyInformation(SMIME_ORGANISATION_VALIDATED, None)]), critical=False))
    if key_id:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root_key.public_key()), critical=False)
    leaf = builder.sign(root_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    return (leaf.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            root.public_bytes(pem))


@pytest.fixture(scope="module")
def credential() -> IdentityCredential:
    chain, key, _ = _credential("Test Dubbing House Ltd", [ExtendedKeyUsageOID.EMAIL_PROTECTION])
    return IdentityCredential(chain_pem=chain, key_pem=key)


def test_the_manifest_names_the_studio_as_editor(
        identity: LocalIdentity, media: dict[str, Path], credential: IdentityCredential,
        tmp_path: Path) -> None:
    named = dataclasses.replace(identity.signing_identity(), identity_credential=credential)
    out = sign_file(media["clip"], tmp_path / "named.mp4", make_inputs(media), named)
    report = read_manifest(out.path, trust_anchors_pem=identity.root_pem)

    (actor,) = report.named_actors
    assert (actor.common_name, actor.organisation) == ("Test Dubbing House Ltd",
                                                       "Test Dubbing House Ltd")
    assert actor.roles == ("cawg.editor",)
    # What the studio vouches for: what it did, under which consent, to which bytes.
    assert set(actor.referenced) == {"c2pa.actions.v2", CONSENT_LABEL, "c2pa.hash.bmff.v3"}
    assert actor.status == "untrusted"  # well-formed, validly signed, on no CAWG list
    assert report.failure_codes == ("cawg.x509.credential.untrusted",)
    assert report.state == "Valid"
    assert report.signer.common_name == identity.certificate.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0].value
    assert "named actor Test Dubbing House Ltd" in report.describe()
    # Everything else the manifest states is still there.
    assert report.consent is not None and report.consent.grant_ids == ("grant-7f3a",)
    assert report.soft_binding is not None


def test_without_a_credential_there_is_no_identity_assertion(
        identity: LocalIdentity, media: dict[str, Path], tmp_path: Path) -> None:
    out = sign_file(media["clip"], tmp_path / "plain.mp4", make_inputs(media),
                    identity.signing_identity())
    report = read_manifest(out.path, trust_anchors_pem=identity.root_pem)
    assert report.named_actors == () and report.state == "Trusted"
    assert not any(a["label"].startswith("cawg.identity") for a in
                   json.loads(json.dumps(report.raw))["manifests"][report.manifest_label][
                       "assertions"])


def test_a_callback_claim_signer_with_an_identity_credential(
        identity: LocalIdentity, media: dict[str, Path], credential: IdentityCredential,
        tmp_path: Path) -> None:
    """An HSM-held claim key (a Python callback the native signer calls) still signs when
    combined: the callback outlives the Python objects the combination consumed."""
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    calls: list[int] = []
    inner = ecdsa_callback(key)

    def hsm(data: bytes) -> bytes:
        calls.append(len(data))
        return inner(data)

    hsm_identity = SigningIdentity(chain_pem=identity.chain_pem, sign_callback=hsm,
                                   trust_anchors_pem=identity.root_pem,
                                   identity_credential=credential)
    import gc

    signer = hsm_identity.make_signer(referenced=("c2pa.actions.v2",))
    gc.collect()  # nothing the native signer calls back into may have been collected
    signer.close()
    out = sign_file(media["clip"], tmp_path / "hsm.mp4", make_inputs(media), hsm_identity)
    assert calls
    (actor,) = read_manifest(out.path, trust_anchors_pem=identity.root_pem).named_actors
    assert actor.status == "untrusted" and actor.roles == ("cawg.editor",)


def test_credentials_cawg_would_refuse_are_refused_early() -> None:
    chain, key, _ = _credential("No Email EKU", [ExtendedKeyUsageOID.CODE_SIGNING])
    with pytest.raises(CertificateError, match="emailProtection"):
        IdentityCredential(chain_pem=chain, key_pem=key)
    chain, key, _ = _credential("Ok", [ExtendedKeyUsageOID.EMAIL_PROTECTION])
    _, other_key, _ = _credential("Other", [ExtendedKeyUsageOID.EMAIL_PROTECTION])
    with pytest.raises(CertificateError):
        IdentityCredential(chain_pem=chain, key_pem=other_key)
    with pytest.raises(CertificateError, match="cawg"):
        IdentityCredential(chain_pem=chain, key_pem=key, roles=("editor",))


@pytest.mark.parametrize(("kind", "match"), [
    ({"valid_days": (-60, -1)}, "expired"),
    ({"valid_days": (5, 60)}, "not valid before"),
    ({"key_id": False}, "Authority Key Identifier"),
])
def test_credentials_every_output_would_name_as_invalid_are_refused_early(
        kind: dict[str, Any], match: str) -> None:
    """c2pa-rs reads the identity assertion of such a credential as ``invalid``
    (``cawg.x509.signature.outside_validity``, ``cawg.x509.credential.invalid``): the
    studio used to take it and put that assertion on every output."""
    chain, key, _ = _credential("House", [ExtendedKeyUsageOID.EMAIL_PROTECTION], **kind)
    with pytest.raises(CertificateError, match=f"CAWG identity certificate .*{match}"):
        IdentityCredential(chain_pem=chain, key_pem=key)


def test_settings_turn_it_on_and_need_both_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    chain, key, _ = _credential("Env House", [ExtendedKeyUsageOID.EMAIL_PROTECTION])
    (tmp_path / "cawg-chain.pem").write_bytes(chain)
    (tmp_path / "cawg-key.pem").write_bytes(key)
    monkeypatch.delenv("STUDIO_CAWG_KEY", raising=False)
    monkeypatch.setenv("STUDIO_CAWG_CHAIN", str(tmp_path / "cawg-chain.pem"))
    with pytest.raises(CertificateError, match="STUDIO_CAWG_KEY"):
        signing_identity(Settings.from_env(tmp_path / "data"))
    monkeypatch.setenv("STUDIO_CAWG_KEY", str(tmp_path / "cawg-key.pem"))
    named = signing_identity(Settings.from_env(tmp_path / "data"))
    assert named.identity_credential is not None
    assert named.identity_credential.chain_pem == chain
    monkeypatch.delenv("STUDIO_CAWG_CHAIN")
    monkeypatch.delenv("STUDIO_CAWG_KEY")
    assert signing_identity(Settings.from_env(tmp_path / "data")).identity_credential is None


def test_an_independent_reader_validates_the_named_manifest(
        identity: LocalIdentity, media: dict[str, Path], credential: IdentityCredential,
        tmp_path: Path) -> None:
    """encypher-c2pa (its own Rust core, not c2pa-rs) reads the same manifest: claim signature,
    integrity and hard binding hold with the identity assertion in it."""
    from tests.provenance.test_independent_readers import encypher_verify

    named = dataclasses.replace(identity.signing_identity(), identity_credential=credential)
    out = sign_file(media["clip"], tmp_path / "named.mp4", make_inputs(media), named)
    report = encypher_verify(out.path, identity.root_pem)
    assert (report["integrity"], report["signature"], report["hard_binding"]) == \
        ("valid", "valid", "match"), report["validation_results"]
    # encypher judges the claim signer against the studio root and does not apply a CAWG
    # trust list to the identity credential: Trusted, no failure.
    assert report["validation_state"] == "Trusted"
    assert report["validation_results"]["failure"] == []


def test_a_named_actor_is_untrusted_only_when_its_signature_validated() -> None:
    """``untrusted`` says "well-formed and validly signed": a reader that found the
    assertion well-formed but did not report its signature validated (an identity of a
    kind it does not check) names an ``invalid`` actor, not a validly signed one; codes of
    another identity assertion do not count."""
    from studio.provenance.signing import _named_actor

    url = "self#jumbf=/c2pa/urn:c2pa:x/c2pa.assertions/cawg.identity"
    assertion = {"label": "cawg.identity", "data": {
        "signer_payload": {"role": ["cawg.editor"], "referenced_assertions": [
            {"url": "self#jumbf=c2pa.assertions/c2pa.hash.bmff.v3"}]},
        "signature_info": {"common_name": "Anyone", "issuer": "Anything Ltd"}}}

    def status(success: list[str], failure: list[str], at: str = url) -> str:
        results = {"success": [{"code": c, "url": at} for c in success],
                   "failure": [{"code": c, "url": at} for c in failure]}
        return _named_actor(assertion, results).status

    assert status(["cawg.identity.well-formed"], []) == "invalid"
    assert status(["cawg.identity.well-formed"], ["cawg.x509.credential.untrusted"]) == "invalid"
    validated = ["cawg.identity.well-formed", "cawg.x509.signature.validated"]
    assert status(validated, ["cawg.x509.credential.untrusted"]) == "untrusted"
    assert status([*validated, "cawg.x509.credential.trusted"], []) == "trusted"
    assert status(validated, [], at=url + "__1") == "invalid"  # another assertion's codes
    actor = _named_actor(assertion, {})
    assert actor.referenced == ("c2pa.hash.bmff.v3",)


def test_a_c2pa_python_without_the_native_call_is_a_clear_signing_error(
        identity: LocalIdentity, credential: IdentityCredential,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """If a c2pa-python release drops or renames the native call, signing fails with a
    SigningError naming the setting to unset, and both signers are closed (not leaked, not
    consumed twice)."""
    from studio.provenance import _cawg
    from studio.provenance.signing import SigningError

    made: list[object] = []
    original = IdentityCredential.make_signer

    def tracked(self: IdentityCredential) -> object:
        signer = original(self)
        made.append(signer)
        return signer

    def missing() -> object:
        raise AttributeError("undefined symbol: c2pa_identity_signer_create")

    monkeypatch.setattr(IdentityCredential, "make_signer", tracked)
    monkeypatch.setattr(_cawg, "_identity_signer_create", missing)
    named = dataclasses.replace(identity.signing_identity(), identity_credential=credential)
    with pytest.raises(SigningError, match="STUDIO_CAWG_CHAIN"):
        named.make_signer(referenced=("c2pa.actions.v2",))
    (signer,) = made
    assert signer._handle is None  # closed by make_signer
