"""Seals on motion files: the registry vouches for a kept performance; a render checks it.

A motion file (:mod:`pipelines.reenact.motion_file`) keeps a driver's performance together
with the identity embeddings that tie it to a performer. Those embeddings are what a later
render's consent check matches, so whoever could edit them could pass off a stranger's
performance as a consenting driver's. ``studio motion extract`` therefore asks the gate for
``performance_driving`` (a ledgered decision like any other) and the registry signs a
:class:`~consent.documents.MotionSeal` over the file's payload digest, the project, the
driver, the grants and the decision (:func:`seal_draft`, ``Registry.issue_motion_seal``).

:func:`verify_seal` is the render's check, and it fails closed with a reason:

1. the seal is signed by this registry's key, or by a key the studio is configured to trust
   (a file re-signed by anyone else is refused), and the signature verifies;
2. the file's payload digest is the sealed one (motion, header and embeddings: swapping the
   embeddings and recomputing an unkeyed hash does not help);
3. the render is for the sealed project (a seal does not travel to another project);
4. the extraction decision is in this registry's ledger as sealed: the leaf at the sealed
   index is that decision, allowed, with the sealed content hash and grants, its record names
   the driver for ``performance_driving`` in the project, and its inclusion proof verifies
   against a checkpoint signed by the registry;
5. the sealed grants' status *now* is returned; the caller denies when one is no longer
   active (the render's own gate call checks the driver's consent again as well).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consent.documents import MotionSeal, SignedDocument
from consent.errors import (
    ConsentError,
    MotionSealError,
    SealScopeError,
    TamperedMotionError,
    UnledgeredSealError,
    UntrustedSealError,
)
from consent.fields import Technique, format_timestamp
from consent.gate import Decision
from consent.keys import PublicKey, short_id
from consent.ledger import EventType, Ledger
from consent.merkle import MerkleError
from consent.registry import GrantStatus, Registry
from consent.store import DecisionRow


def seal_draft(decision: Decision, *, format_version: int, payload_sha256: str,
               video_sha256: str, embedder: str, created_at: datetime) -> dict[str, Any]:
    """The seal for a motion file extracted under ``decision`` (allowed, ledgered, with one
    ``performance_driving`` subject); ``Registry.issue_motion_seal`` signs it."""
    if not decision.allowed or decision.ledger_index is None or not decision.decision_id:
        raise MotionSealError("only an allowed decision on the ledger can seal a motion file")
    drivers = [s for s in decision.request.subjects
               if s.technique is Technique.PERFORMANCE_DRIVING]
    if len(drivers) != 1:
        raise MotionSealError("a motion file's decision names exactly one performance_driving "
                              f"subject, this one names {len(drivers)}")
    pid = drivers[0].performer_id
    grants = [{"grant_id": g.grant_id, "sha256": g.sha256} for g in decision.grants_used
              if g.performer_id == pid and g.technique == Technique.PERFORMANCE_DRIVING.value]
    if not grants:
        raise MotionSealError(f"the decision uses no performance_driving grant of {pid}")
    return {
        "format_version": format_version, "project_id": decision.request.project_id,
        "driver_performer_id": pid, "grants": grants,
        "decision_id": decision.decision_id, "decision_ledger_index": decision.ledger_index,
        "decision_sha256": hashlib.sha256(decision.content_bytes()).hexdigest(),
        "video_sha256": video_sha256, "embedder": embedder,
        "created_at": format_timestamp(created_at), "payload_sha256": payload_sha256,
    }


@dataclass(frozen=True)
class CheckedSeal:
    """A seal that passed :func:`verify_seal`, with its grants' status now."""

    seal: MotionSeal
    signer_key_id: str
    grants: tuple[GrantStatus, ...]

    @property
    def inactive_grants(self) -> tuple[GrantStatus, ...]:
        return tuple(g for g in self.grants if g.status != "active")


def verify_seal(registry: Registry, raw: bytes, *, payload_sha256: str, project_id: str,
                format_version: int, trusted_keys: Sequence[PublicKey] = (),
                now: datetime | None = None) -> CheckedSeal:
    """Check a motion file's seal for a render in ``project_id`` (module docstring)."""
    now = now or registry.clock()
    seal, signer = _signed(registry, raw, trusted_keys)
    if seal.format_version != format_version:
        raise TamperedMotionError(f"the seal is for motion format {seal.format_version}, the "
                                  f"file is format {format_version}")
    if seal.payload_sha256 != payload_sha256:
        raise TamperedMotionError(
            "the motion file's contents (motion, header or identity embeddings) differ from "
            "what the registry sealed: the file was edited after extraction")
    if seal.project_id != project_id:
        raise SealScopeError(
            f"the motion file was extracted for project {seal.project_id}; it cannot drive a "
            f"render in project {project_id} (re-extract it for that project)")
    _check_ledger(registry, seal, now)
    statuses = []
    for sealed in seal.grants:
        try:
            status = registry.grant(sealed.grant_id, now)
        except ConsentError as exc:
            raise UnledgeredSealError(f"the sealed grant {sealed.grant_id} is not in this "
                                      f"registry: {exc.message}") from None
        if status.sha256 != sealed.sha256:
            raise UnledgeredSealError(f"grant {sealed.grant_id} on file is not the grant the "
                                      "motion file was sealed under")
        statuses.append(status)
    return CheckedSeal(seal, signer.key_id, tuple(statuses))


def _signer(doc: SignedDocument[MotionSeal], registry: Registry,
            trusted_keys: Sequence[PublicKey]) -> PublicKey:
    keys = {k.key_id: k for k in (registry.public_key, *trusted_keys)}
    for sig in doc.signatures:
        if sig.keyid in keys:
            return keys[sig.keyid]
    names = ", ".join(short_id(s.keyid) for s in doc.signatures)
    raise UntrustedSealError(
        f"the motion file is sealed by {names}, which is neither this registry's key "
        f"({short_id(registry.public_key.key_id)}) nor a trusted key: it was re-signed, or "
        "comes from another studio")


def _signed(registry: Registry, raw: bytes,
            trusted_keys: Sequence[PublicKey]) -> tuple[MotionSeal, PublicKey]:
    try:
        doc = SignedDocument.from_bytes(raw, MotionSeal)
    except ConsentError as exc:
        raise TamperedMotionError(f"the motion file's seal is unreadable: {exc.message}"
                                  ) from None
    key = _signer(doc, registry, trusted_keys)
    try:
        doc.verify(key)
    except ConsentError:
        raise TamperedMotionError(f"the seal's signature by {short_id(key.key_id)} does not "
                                  "verify: the seal was edited") from None
    return doc.payload, key


def _check_ledger(registry: Registry, seal: MotionSeal, now: datetime) -> None:
    index, did = seal.decision_ledger_index, seal.decision_id
    where = f"the extraction decision {did} (ledger index {index})"
    with registry.store.session() as s:
        try:
            entry = Ledger.entry(s, index)
        except ConsentError:
            raise UnledgeredSealError(f"{where} is not in this registry's ledger (a motion file "
                                      "from another studio?)") from None
        body = entry.body
        if entry.event_type is not EventType.DECISION or body.get("decision_id") != did:
            raise UnledgeredSealError(f"{where}: that ledger leaf is another event")
        if body.get("allowed") is not True:
            raise UnledgeredSealError(f"{where} was a deny")
        if body.get("decision_sha256") != seal.decision_sha256:
            raise UnledgeredSealError(f"{where}: the ledgered decision has other contents")
        ledgered = {(g.get("grant_id"), g.get("sha256")) for g in body.get("grants", [])}
        if not {(g.grant_id, g.sha256) for g in seal.grants} <= ledgered:
            raise UnledgeredSealError(f"{where} did not use the sealed grants")
        row = s.get(DecisionRow, did)
        if (row is None or row.ledger_index != index or row.allowed is not True
                or not isinstance(row.document, bytes)
                or hashlib.sha256(row.document).hexdigest() != seal.decision_sha256):
            raise UnledgeredSealError(f"{where}: the decision record is missing or altered")
        _check_request(json.loads(row.document).get("request", {}), seal, where)
        # The leaf must be in the tree the registry signs, not just in a table row.
        checkpoint = registry.ledger.open_checkpoint(
            registry.ledger.checkpoint(s, now.astimezone(UTC)))
        proof = registry.ledger.inclusion_proof(s, index, checkpoint.size)
        try:
            if proof.root != checkpoint.root or proof.leaf_hash != entry.leaf_hash:
                raise MerkleError("the proof does not lead to the signed checkpoint")
            proof.verify()
        except MerkleError as exc:
            raise UnledgeredSealError(f"{where}: ledger inclusion proof fails ({exc})") from None


def _check_request(request: Any, seal: MotionSeal, where: str) -> None:
    subjects = request.get("subjects", []) if isinstance(request, dict) else []
    driving = [s for s in subjects if isinstance(s, dict)
               and s.get("technique") == Technique.PERFORMANCE_DRIVING.value]
    if request.get("project_id") != seal.project_id or [
            s.get("performer_id") for s in driving] != [seal.driver_performer_id]:
        raise UnledgeredSealError(f"{where} was not for {seal.driver_performer_id}'s "
                                  f"performance_driving in project {seal.project_id}")
    if request.get("source_media_sha256") != seal.video_sha256:
        raise UnledgeredSealError(f"{where} was made for another driving video")
