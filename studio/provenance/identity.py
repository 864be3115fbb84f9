"""The studio's C2PA signing identity and trust anchors, as the settings choose them.

Three ways to sign, in order of precedence: a callback named by ``STUDIO_C2PA_SIGNER``
(``module:function`` returning a :class:`SigningIdentity`, for an HSM or a cloud KMS), an
operator's own chain and key (``STUDIO_C2PA_CHAIN`` + ``STUDIO_C2PA_KEY``), or the embedded
default: a local studio CA created on first use under the data folder. Any of them may also
name the studio in a CAWG identity assertion (``STUDIO_CAWG_CHAIN`` + ``STUDIO_CAWG_KEY``).
A verifier trusts the studio's own root plus any anchors the settings add; it never fetches
anything.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

from studio.provenance.certificates import (
    IdentityCredential,
    SigningIdentity,
    ensure_local_identity,
)
from studio.provenance.manifest import CertificateError
from studio.settings import Settings


def signing_identity(settings: Settings) -> SigningIdentity:
    identity = _claim_identity(settings)
    if settings.cawg_chain or settings.cawg_key:
        if not (settings.cawg_chain and settings.cawg_key):
            raise CertificateError("set both STUDIO_CAWG_CHAIN and STUDIO_CAWG_KEY (or neither: "
                                   "no CAWG identity assertion)")
        if identity.identity_credential is None:
            identity = replace(identity, identity_credential=IdentityCredential.from_files(
                settings.cawg_chain, settings.cawg_key))
    return identity


def _claim_identity(settings: Settings) -> SigningIdentity:
    if settings.c2pa_signer:
        module_name, _, attr = settings.c2pa_signer.partition(":")
        if not module_name or not attr:
            raise CertificateError(f"STUDIO_C2PA_SIGNER={settings.c2pa_signer!r}: expected "
                                   "'module:function'")
        factory = getattr(importlib.import_module(module_name), attr)
        identity = factory()
        if not isinstance(identity, SigningIdentity):
            raise CertificateError(f"{settings.c2pa_signer} did not return a SigningIdentity")
        return identity
    if settings.c2pa_chain or settings.c2pa_key:
        if not (settings.c2pa_chain and settings.c2pa_key):
            raise CertificateError("set both STUDIO_C2PA_CHAIN and STUDIO_C2PA_KEY (or neither "
                                   "to use the studio's local certificate)")
        return SigningIdentity.from_files(settings.c2pa_chain, settings.c2pa_key,
                                          tsa_url=settings.c2pa_tsa_url,
                                          trust_anchors_path=settings.c2pa_trust_anchors)
    local = ensure_local_identity(settings.c2pa_dir)
    return local.signing_identity(tsa_url=settings.c2pa_tsa_url)


def trust_anchors(settings: Settings) -> bytes:
    """PEM roots a verifier accepts: the studio's local root (when there is one) and extras."""
    pems: list[bytes] = []
    root = settings.c2pa_dir / "c2pa-root.pem"
    if root.is_file():
        pems.append(root.read_bytes())
    if settings.c2pa_trust_anchors is not None:
        pems.append(settings.c2pa_trust_anchors.read_bytes())
    return b"\n".join(pems)
