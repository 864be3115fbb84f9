"""Which identity signs (settings), and the signing problems an operator can run into."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from studio.provenance.certificates import SigningIdentity, create_local_identity
from studio.provenance.identity import signing_identity, trust_anchors
from studio.provenance.manifest import CertificateError, ProvenanceError
from studio.settings import Settings


def _settings(tmp_path: Path, **env: str) -> Settings:
    import os

    old = dict(os.environ)
    try:
        os.environ.update(env)
        return Settings.from_env(tmp_path / "data")
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_the_embedded_default_is_a_local_studio_ca(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    identity = signing_identity(settings)
    assert identity.key_pem is not None and identity.trust_anchors_pem is not None
    assert (settings.c2pa_dir / "c2pa-root.pem").is_file()
    assert trust_anchors(settings) == (settings.c2pa_dir / "c2pa-root.pem").read_bytes()
    # The same identity comes back (created once, long-lived).
    assert signing_identity(settings).chain_pem == identity.chain_pem


def test_an_operators_own_chain_and_key(tmp_path: Path) -> None:
    own = create_local_identity(tmp_path / "own", "Operator Films")
    settings = _settings(tmp_path, STUDIO_C2PA_CHAIN=str(own.chain_path),
                         STUDIO_C2PA_KEY=str(own.key_path),
                         STUDIO_C2PA_TSA_URL="http://tsa.example/rfc3161")
    identity = signing_identity(settings)
    assert identity.chain_pem == own.chain_pem
    assert identity.tsa_url == "http://tsa.example/rfc3161"
    assert not settings.c2pa_dir.exists()  # no local CA was made


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    own = create_local_identity(tmp_path / "own", "Operator Films")
    missing = tmp_path / "nowhere" / "signer.key"
    settings = _settings(tmp_path, STUDIO_C2PA_CHAIN=str(own.chain_path),
                         STUDIO_C2PA_KEY=str(missing))
    with pytest.raises((ProvenanceError, OSError)) as raised:
        signing_identity(settings)
    assert "signer.key" in str(raised.value)
    half = _settings(tmp_path, STUDIO_C2PA_CHAIN=str(own.chain_path))
    with pytest.raises(CertificateError, match="both"):
        signing_identity(half)


def test_a_signing_callback_named_in_settings(tmp_path: Path) -> None:
    own = create_local_identity(tmp_path / "kms", "KMS Films")
    module = tmp_path / "kms_signer.py"
    module.write_text(
        "from pathlib import Path\n"
        "from cryptography.hazmat.primitives import serialization\n"
        "from studio.provenance.certificates import SigningIdentity, ecdsa_callback\n"
        f"FOLDER = Path({str(tmp_path / 'kms')!r})\n"
        "def identity():\n"
        "    key = serialization.load_pem_private_key(\n"
        "        (FOLDER / 'c2pa-signer-key.pem').read_bytes(), None)\n"
        "    return SigningIdentity(chain_pem=(FOLDER / 'c2pa-signer-chain.pem').read_bytes(),\n"
        "                           sign_callback=ecdsa_callback(key))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        settings = _settings(tmp_path, STUDIO_C2PA_SIGNER="kms_signer:identity")
        identity = signing_identity(settings)
        assert isinstance(identity, SigningIdentity)
        assert identity.key_pem is None and identity.sign_callback is not None
        assert identity.chain_pem == own.chain_pem
        with pytest.raises(CertificateError, match="module:function"):
            signing_identity(_settings(tmp_path, STUDIO_C2PA_SIGNER="no-colon"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("kms_signer", None)


def test_an_expired_signing_certificate_is_refused(tmp_path: Path) -> None:
    past = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
    old = create_local_identity(tmp_path / "old", "Old Films", valid_years=(2, 1), now=past)
    with pytest.raises(CertificateError, match="expired"):
        old.signing_identity()
