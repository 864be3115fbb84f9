"""The studio's C2PA signing identity: a local CA by default, an operator's chain or HSM/KMS.

Why a local CA: a fresh checkout must sign every output with no configuration, and C2PA
signing needs an X.509 end-entity certificate, not a bare key. ``create_local_identity``
makes a self-signed studio root (CA) and one end-entity certificate that meets the rules the
SDK enforces when signing (checked on c2pa-python 0.38, see PROVENANCE.md):

- X.509 v3, ``CA:false``, Authority and Subject Key Identifiers, KeyUsage
  ``digitalSignature`` only, an Organization in the subject, an ES256 (P-256) key;
- ExtendedKeyUsage with **emailProtection** (1.3.6.1.5.5.7.3.4) *and* the C2PA claim-signing
  EKU (1.3.6.1.4.1.62558.2.1): a certificate whose only EKU is the C2PA one reads as
  ``Invalid`` under default validator settings (the "EKU trap");
- long-lived (root 30 years, signer 10 years), because without an RFC 3161 time stamp a
  manifest turns ``Invalid`` once its signing certificate expires. Configure ``tsa_url``
  in production.

Files (``c2pa-root.pem``, ``c2pa-signer-chain.pem``, ``c2pa-signer-key.pem`` with mode 0600)
are never overwritten: a regenerated root would orphan every manifest signed before.
The chain file holds the signer certificate followed by any intermediates, *not* the root:
the root is the trust anchor a verifier configures, and C2PA's x5chain should not carry it.

A studio root is trusted by the studio's own verifier (``Trusted``); public validators show
its manifests as ``Valid`` but untrusted until the signer certificate comes from a CA on the
C2PA trust list. For that, or to keep the key in an HSM/KMS, build a
:class:`SigningIdentity` from the operator's chain and a key file or a signing callback.

All cryptography comes from ``cryptography``; nothing here is hand-rolled.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import c2pa  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .manifest import CertificateError, SigningError

ROOT_FILE = "c2pa-root.pem"
CHAIN_FILE = "c2pa-signer-chain.pem"
KEY_FILE = "c2pa-signer-key.pem"
DEFAULT_ORGANISATION = "Consent Dubbing Studio"
ROOT_YEARS = 30
LEAF_YEARS = 10
C2PA_CLAIM_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

Algorithm = Literal["es256", "es384", "es512", "ps256", "ed25519"]
_E = TypeVar("_E", bound=x509.ExtensionType)
SignCallback = Callable[[bytes], bytes]
"""Signs the bytes the SDK hands over. For ES256 it returns the raw 64-byte r‖s, not DER."""

_SDK_ALGS: dict[str, c2pa.C2paSigningAlg] = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}
_CURVE_ALGS: dict[str, tuple[Algorithm, int, hashes.HashAlgorithm]] = {
    "secp256r1": ("es256", 32, hashes.SHA256()),
    "secp384r1": ("es384", 48, hashes.SHA384()),
    "secp521r1": ("es512", 66, hashes.SHA512()),
}


# --------------------------------------------------------------------------------------
# Reading and checking certificates


def load_chain(pem: bytes) -> list[x509.Certificate]:
    """Certificates of a PEM chain in order; raises :class:`CertificateError`."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate chain: {exc}") from None
    if not certs:
        raise CertificateError("the certificate chain is empty")
    return certs


def _ext(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def algorithm_of(cert: x509.Certificate) -> Algorithm:
    """The C2PA signing algorithm that the certificate's key implies."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVE_ALGS:
            return _CURVE_ALGS[key.curve.name][0]
        raise CertificateError(f"elliptic curve {key.curve.name} is not allowed by C2PA; "
                               "use P-256, P-384 or P-521")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CertificateError(f"an RSA key of {key.key_size} bits is too short for C2PA "
                                   "(2048 at least); better, use an ES256 (P-256) key")
        return "ps256"
    raise CertificateError(f"unsupported signing key type {type(key).__name__}")


def check_signing_certificate(cert: x509.Certificate, *,
                              now: dt.datetime | None = None,
                              what: str = "signing certificate",
                              organisation: bool = True) -> None:
    """Refuse an end-entity certificate that the SDK would refuse or validators distrust.

    Checked before signing so that the operator gets one clear sentence instead of the
    SDK's error, and so that the EKU trap (a certificate that signs fine but whose
    manifests read as ``Invalid``) is caught at configuration time. ``what`` names the
    certificate in the message; ``organisation``: whether its subject must have an O=
    (the claim signer's; a CAWG identity credential may name a person only).
    """
    name = cert.subject.rfc4514_string()
    when = now or dt.datetime.now(dt.UTC)
    problems: list[str] = []
    if cert.version != x509.Version.v3:
        problems.append("it is not an X.509 v3 certificate")
    basic = _ext(cert, x509.BasicConstraints)
    if basic is not None and basic.ca:
        problems.append("it is a CA certificate (basicConstraints CA:true); sign with an "
                        "end-entity certificate issued by it")
    if _ext(cert, x509.AuthorityKeyIdentifier) is None:
        problems.append("it has no Authority Key Identifier extension")
    usage = _ext(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        problems.append("its KeyUsage lacks digitalSignature")
    elif usage.key_cert_sign:
        problems.append("its KeyUsage includes keyCertSign (only CAs may have it)")
    ekus = _ext(cert, x509.ExtendedKeyUsage)
    if ekus is None:
        problems.append("it has no ExtendedKeyUsage")
    else:
        oids = set(ekus)
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in oids:
            problems.append("its ExtendedKeyUsage is anyExtendedKeyUsage, which C2PA refuses")
        if oids == {ExtendedKeyUsageOID.SERVER_AUTH}:
            problems.append("its only ExtendedKeyUsage is serverAuth (a TLS certificate)")
        if ExtendedKeyUsageOID.EMAIL_PROTECTION not in oids:
            problems.append(
                "its ExtendedKeyUsage lacks emailProtection (1.3.6.1.5.5.7.3.4): default "
                "validators read manifests signed with only the C2PA or documentSigning EKU "
                "as Invalid")
    if organisation and not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        problems.append("its subject has no Organization (O=)")
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            problems.append(f"it has an unknown critical extension {ext.oid.dotted_string}")
    if cert.not_valid_after_utc <= when:
        problems.append(f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if cert.not_valid_before_utc > when:
        problems.append(f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    try:
        algorithm_of(cert)
    except CertificateError as exc:
        problems.append(exc.message)
    if problems:
        raise CertificateError(f"{what} {name} cannot be used: " + "; ".join(problems))


def organisation_of(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else None


# --------------------------------------------------------------------------------------
# The signing identity


@dataclass(frozen=True)
class IdentityCredential:
    """The X.509 credential of a CAWG identity assertion: who the manifest names as the actor
    (the studio, as ``cawg.editor``), signed apart from the claim.

    CAWG's interim trust model accepts an organisation-validated S/MIME certificate (the
    emailProtection EKU and a CA/Browser Forum S/MIME policy) from a CA it recognises; a
    credential of the studio's own CA is written and validates, but reads as
    ``cawg.x509.credential.untrusted`` everywhere, and validators then show the whole manifest
    as ``Valid`` instead of ``Trusted``. So it is opt-in (``STUDIO_CAWG_CHAIN`` +
    ``STUDIO_CAWG_KEY``), for a studio that holds such a certificate. docs/provenance.md.
    """

    chain_pem: bytes
    key_pem: bytes
    roles: tuple[str, ...] = ("cawg.editor",)

    def __post_init__(self) -> None:
        cert = load_chain(self.chain_pem)[0]
        ekus = _ext(cert, x509.ExtendedKeyUsage)
        if ekus is None or ExtendedKeyUsageOID.EMAIL_PROTECTION not in set(ekus):
            raise CertificateError("the CAWG identity certificate lacks the emailProtection "
                                   "ExtendedKeyUsage (1.3.6.1.5.5.7.3.4) CAWG requires")
        if not all(r.startswith("cawg.") for r in self.roles) or not self.roles:
            raise CertificateError(f"CAWG roles {self.roles}: expected cawg.* names "
                                   "(cawg.editor, cawg.producer, ...)")
        # The C2PA certificate profile applies to the credential too: one without an
        # Authority Key Identifier, expired or not yet valid signs, and every output then
        # names its actor as ``invalid`` (cawg.x509.credential.invalid / outside_validity).
        check_signing_certificate(cert, what="CAWG identity certificate", organisation=False)
        _check_key_matches(self.key_pem, cert)

    @classmethod
    def from_files(cls, chain_path: Path, key_path: Path) -> IdentityCredential:
        return cls(chain_pem=_read(chain_path, "CAWG identity certificate chain"),
                   key_pem=_read(key_path, "CAWG identity private key"))

    def make_signer(self) -> c2pa.Signer:
        cert = load_chain(self.chain_pem)[0]
        info = c2pa.C2paSignerInfo(_SDK_ALGS[algorithm_of(cert)], self.chain_pem,
                                   self.key_pem, None)
        try:
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise SigningError(f"the C2PA SDK refused the CAWG identity credential: "
                               f"{exc}") from None


@dataclass(frozen=True)
class SigningIdentity:
    """How outputs are signed: a certificate chain plus a key file *or* a signing callback.

    ``chain_pem``: the signer certificate first, then intermediates (not the root).
    ``key_pem``: its PKCS#8 private key, unencrypted (keep the file 0600), or
    ``sign_callback`` for a key in an HSM or cloud KMS (see :func:`ecdsa_callback`).
    ``tsa_url``: an RFC 3161 time-stamp authority, so manifests stay valid after the
    certificate expires (signing then needs the network). ``trust_anchors_pem``: the root(s)
    a verifier should trust for these manifests (the studio root by default).
    ``identity_credential``: when set, every manifest also carries a CAWG identity assertion
    naming its subject (:class:`IdentityCredential`).
    """

    chain_pem: bytes
    key_pem: bytes | None = None
    sign_callback: SignCallback | None = None
    tsa_url: str | None = None
    trust_anchors_pem: bytes | None = None
    identity_credential: IdentityCredential | None = None

    def __post_init__(self) -> None:
        if (self.key_pem is None) == (self.sign_callback is None):
            raise CertificateError("a signing identity needs exactly one of a private key "
                                   "(key_pem) or a signing callback (sign_callback)")
        if self.tsa_url is not None and not self.tsa_url.startswith(("http://", "https://")):
            raise CertificateError(f"time-stamp authority {self.tsa_url!r} is not an http(s) "
                                   "URL")
        chain = load_chain(self.chain_pem)
        check_signing_certificate(chain[0])
        if self.key_pem is not None:
            _check_key_matches(self.key_pem, chain[0])

    @property
    def certificate(self) -> x509.Certificate:
        return load_chain(self.chain_pem)[0]

    @property
    def algorithm(self) -> Algorithm:
        return algorithm_of(self.certificate)

    @classmethod
    def from_files(cls, chain_path: Path, key_path: Path, *, tsa_url: str | None = None,
                   trust_anchors_path: Path | None = None) -> SigningIdentity:
        """An operator's own chain and key, as PEM files."""
        return cls(
            chain_pem=_read(chain_path, "certificate chain"),
            key_pem=_read(key_path, "private key"),
            tsa_url=tsa_url,
            trust_anchors_pem=_read(trust_anchors_path, "trust anchors")
            if trust_anchors_path else None,
        )

    def make_signer(self, *, referenced: tuple[str, ...] = ()) -> c2pa.Signer:
        """A fresh ``c2pa.Signer`` (a ``Context`` consumes the one it is given); with an
        ``identity_credential``, one that also writes the CAWG identity assertion,
        referencing the assertions labelled ``referenced``."""
        alg = _SDK_ALGS[self.algorithm]
        try:
            if self.sign_callback is not None:
                claim = c2pa.Signer.from_callback(self.sign_callback, alg,
                                                  self.chain_pem.decode("ascii"), self.tsa_url)
            else:
                claim = c2pa.Signer.from_info(
                    c2pa.C2paSignerInfo(alg, self.chain_pem, self.key_pem, self.tsa_url))
        except c2pa.C2paError as exc:
            raise SigningError(f"the C2PA SDK refused the signing identity: {exc}") from None
        if self.identity_credential is None:
            return claim
        from ._cawg import with_identity

        try:
            identity = self.identity_credential.make_signer()
        except SigningError:
            claim.close()
            raise
        try:
            return with_identity(claim, identity, referenced=referenced,
                                 roles=self.identity_credential.roles)
        except c2pa.C2paError as exc:
            raise SigningError(f"the C2PA SDK refused the CAWG identity signer: {exc}"
                               ) from None
        except AttributeError as exc:  # nothing consumed: both signers are still ours
            claim.close()
            identity.close()
            raise SigningError(f"this c2pa-python cannot add a CAWG identity assertion "
                               f"({exc}); unset STUDIO_CAWG_CHAIN/STUDIO_CAWG_KEY") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read the {what} at {path}: {exc.strerror}") from None


_PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _load_private_key(key_pem: bytes) -> _PrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateError("the signing key is encrypted; the SDK needs it unencrypted "
                               "(protect the file with mode 0600, or use a signing callback)"
                               ) from None
    except ValueError:
        raise CertificateError("the signing key is not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                      | rsa.RSAPrivateKey):
        raise CertificateError(f"unsupported signing key type {type(key).__name__}")
    return key


def _public_der(key: object) -> bytes:
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
                  | rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return b""


def _check_key_matches(key_pem: bytes, cert: x509.Certificate) -> None:
    key = _load_private_key(key_pem)
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise CertificateError("the private key does not belong to the signing certificate "
                               f"{cert.subject.rfc4514_string()}")


def ecdsa_callback(private_key: ec.EllipticCurvePrivateKey) -> SignCallback:
    """A signing callback over a ``cryptography`` EC key, returning raw r‖s.

    The shape an HSM/KMS adapter must have; most KMS APIs return DER, which
    :func:`der_to_raw_ecdsa` converts.
    """
    name = private_key.curve.name
    if name not in _CURVE_ALGS:
        raise CertificateError(f"elliptic curve {name} is not allowed by C2PA")
    _, size, digest = _CURVE_ALGS[name]

    def sign(data: bytes) -> bytes:
        return der_to_raw_ecdsa(private_key.sign(data, ec.ECDSA(digest)), size)

    return sign


def der_to_raw_ecdsa(der: bytes, size: int) -> bytes:
    """A DER ECDSA signature as the fixed-size r‖s that COSE (and the SDK) expects."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


# --------------------------------------------------------------------------------------
# The embedded default: a local studio CA


@dataclass(frozen=True)
class LocalIdentity:
    """The files of a local studio identity, loaded and checked."""

    directory: Path
    root_pem: bytes
    chain_pem: bytes
    key_pem: bytes

    @property
    def root_path(self) -> Path:
        return self.directory / ROOT_FILE

    @property
    def chain_path(self) -> Path:
        return self.directory / CHAIN_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def root(self) -> x509.Certificate:
        return load_chain(self.root_pem)[0]

    @property
    def certificate(self) -> x509.Certificate:
        return load_chain(self.chain_pem)[0]

    def signing_identity(self, *, tsa_url: str | None = None) -> SigningIdentity:
        return SigningIdentity(chain_pem=self.chain_pem, key_pem=self.key_pem,
                               tsa_url=tsa_url, trust_anchors_pem=self.root_pem)


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _years(start: dt.datetime, years: int) -> dt.datetime:
    return start + dt.timedelta(days=365 * years + years // 4)


def create_local_identity(directory: Path, organisation: str = DEFAULT_ORGANISATION, *,
                          valid_years: tuple[int, int] = (ROOT_YEARS, LEAF_YEARS),
                          now: dt.datetime | None = None) -> LocalIdentity:
    """Make a studio root CA and an ES256 signer certificate in ``directory``.

    ``valid_years`` is (root, signer). Refuses to overwrite any existing file.
    """
    root_years, leaf_years = valid_years
    if not organisation.strip():
        raise CertificateError("the organisation name is empty")
    if not 0 < leaf_years <= root_years:
        raise CertificateError(f"validity {valid_years}: need 0 < signer years <= root years")
    directory = Path(directory)
    paths = [directory / f for f in (ROOT_FILE, CHAIN_FILE, KEY_FILE)]
    existing = [p.name for p in paths if p.exists()]
    if existing:
        raise CertificateError(f"{directory} already holds {', '.join(existing)}; refusing to "
                               "replace a signing identity (use ensure_local_identity)")
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organisation, f"{organisation} C2PA Root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(_years(start, root_years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(organisation, f"{organisation} C2PA Signer"))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(_years(start, leaf_years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING_EKU]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    # The root's private key is not kept: the root only ever signs this one certificate,
    # and a root key lying next to the signer key would add risk and nothing else.
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    chain_pem = leaf.public_bytes(serialization.Encoding.PEM)
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    directory.mkdir(parents=True, exist_ok=True)
    _write_new(directory / KEY_FILE, key_pem, 0o600)
    _write_new(directory / CHAIN_FILE, chain_pem, 0o644)
    _write_new(directory / ROOT_FILE, root_pem, 0o644)
    return LocalIdentity(directory, root_pem, chain_pem, key_pem)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_local_identity(directory: Path) -> LocalIdentity:
    """Load and check an existing local identity; raises :class:`CertificateError`."""
    directory = Path(directory)
    identity = LocalIdentity(directory,
                             _read(directory / ROOT_FILE, "studio root certificate"),
                             _read(directory / CHAIN_FILE, "signer certificate chain"),
                             _read(directory / KEY_FILE, "signer private key"))
    root, leaf = identity.root, identity.certificate
    try:
        leaf.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(f"{CHAIN_FILE} in {directory} was not issued by the root in "
                               f"{ROOT_FILE}: the files do not belong together") from None
    check_signing_certificate(leaf)
    _check_key_matches(identity.key_pem, leaf)
    mode = (directory / KEY_FILE).stat().st_mode & 0o777
    if mode & 0o077:
        raise CertificateError(f"{identity.key_path} is readable by others (mode {mode:o}); "
                               f"run: chmod 600 {identity.key_path}")
    return identity


def ensure_local_identity(directory: Path, organisation: str = DEFAULT_ORGANISATION
                          ) -> LocalIdentity:
    """Load the local identity in ``directory``, creating it on first use.

    A partial set of files is an error, not a reason to start over: a new root would leave
    every earlier manifest untrusted by this studio's verifier.
    """
    directory = Path(directory)
    present = [(directory / f).exists() for f in (ROOT_FILE, CHAIN_FILE, KEY_FILE)]
    if all(present):
        return load_local_identity(directory)
    if any(present):
        missing = [f for f, p in zip((ROOT_FILE, CHAIN_FILE, KEY_FILE), present, strict=True)
                   if not p]
        raise CertificateError(f"{directory} holds part of a signing identity "
                               f"({', '.join(missing)} missing); restore it from backup, or "
                               "move the rest away to start a new identity")
    return create_local_identity(directory, organisation)
