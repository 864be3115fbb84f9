"""Signed decisions for render workers: consent stays central, work goes out.

A render worker (``studio.executors``) holds no database connection and no key. What it may
edit, it learns from one document: a :class:`~consent.documents.RenderDecisionToken` that the
registry signs (Ed25519, its own key, the same canonical envelope as every other document)
after the gate *allowed* and ledgered a decision. The token binds:

- the job and chunk (shot) it was issued for: a token travels with one task, nowhere else;
  for a chunk of a long shot, also its frame range (``frames``): a token replayed on another
  range is refused;
- the SHA-256 of every input file: the worker hashes what it reads and compares;
- the decision's id, ledger leaf index and content hash (``Registry.issue_decision_token``
  signs only for an allowed decision on record exactly so);
- the authorised segments, each with its grant, and the identity trace's verified runs:
  the worker builds the edit guard's permits from these, never from anything else it is sent;
- the watermark payload the output carries;
- the digest of the face meshes the head tracked (``meshes``, optional): the worker reads
  them from shared staging and renders only meshes that give it;
- ``issued_at`` / ``expires_at``: a token is short-lived; a worker refuses an expired one.

:func:`verify_token` is the worker's check. It fails closed with one of the errors of the
``DecisionTokenError`` family; the worker then refuses the task. Everything after the
pipeline — the re-check, the C2PA manifest, the ledger, the publication — happens on the
head, against the registry, as for a local render.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from consent.documents import RenderDecisionToken, SignedDocument
from consent.errors import (
    DecisionScopeError,
    DecisionTokenError,
    DocumentError,
    ExpiredDecisionError,
    ForgedDecisionError,
    SignatureError,
)
from consent.fields import format_timestamp
from consent.gate import Decision
from consent.keys import PublicKey, short_id

#: How long a token is good for by default: long enough for a queued shot to start on a busy
#: cluster, short enough that a leaked one is soon useless. The central re-check still runs.
DEFAULT_VALIDITY = timedelta(hours=6)
#: Clock skew tolerated between the head that issued a token and a worker that checks it.
CLOCK_SKEW = timedelta(minutes=2)


def token_draft(decision: Decision, *, job_id: str, chunk_id: str,
                inputs: Mapping[str, str], traces: Mapping[str, Sequence[tuple[int, int]]],
                watermark_payload: int, issued_at: datetime,
                validity: timedelta = DEFAULT_VALIDITY,
                frames: tuple[int, int] | None = None,
                meshes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The token for one chunk of a render allowed by ``decision`` (allowed, ledgered, with
    segments); ``Registry.issue_decision_token`` signs it. ``frames``: the chunk's frame
    range (first, last) when it is part of a shot; None: the whole shot. ``meshes``: each
    analysed video's meshes digest (name → SHA-256) as the head tracked them."""
    if not decision.allowed or decision.ledger_index is None or not decision.decision_id:
        raise DecisionTokenError("only an allowed decision on the ledger can be handed to a "
                                 "worker")
    if not decision.segments:
        raise DecisionTokenError("the decision authorises no segment: nothing to hand out")
    return {
        "job_id": job_id, "chunk_id": chunk_id, "operation": decision.request.operation,
        "decision_id": decision.decision_id,
        "decision_ledger_index": decision.ledger_index,
        "decision_sha256": hashlib.sha256(decision.content_bytes()).hexdigest(),
        "inputs": [{"name": n, "sha256": h} for n, h in sorted(inputs.items())],
        "segments": [{"track_id": s.track_id, "first_frame": s.first_frame,
                      "last_frame": s.last_frame, "performer_id": s.performer_id,
                      "grant_id": s.grant_id} for s in decision.segments],
        "traces": [{"track_id": t, "runs": [list(r) for r in runs]}
                   for t, runs in sorted(traces.items())],
        "watermark_payload": watermark_payload,
        "issued_at": format_timestamp(issued_at),
        "expires_at": format_timestamp(issued_at + validity),
        **({} if frames is None else {"frames": [int(frames[0]), int(frames[1])]}),
        **({} if not meshes else
           {"meshes": [{"name": n, "sha256": h} for n, h in sorted(meshes.items())]}),
    }


def verify_token(raw: bytes, registry_key: PublicKey, *, job_id: str, chunk_id: str,
                 inputs: Mapping[str, str], now: datetime | None = None,
                 frames: tuple[int, int] | None = None) -> RenderDecisionToken:
    """The worker's check of ``raw`` (module docstring): the token it may act on, or a
    ``DecisionTokenError`` that says why the work is refused."""
    now = now or datetime.now(UTC)
    try:
        doc = SignedDocument.from_bytes(raw, RenderDecisionToken)
    except DocumentError as exc:
        raise ForgedDecisionError(f"not a registry decision token: {exc.message}") from None
    if len(doc.signatures) != 1 or doc.signatures[0].keyid != registry_key.key_id:
        signers = ", ".join(short_id(s.keyid) for s in doc.signatures)
        raise ForgedDecisionError(f"the decision is signed by {signers}, not by the registry's "
                                  f"key {short_id(registry_key.key_id)}")
    try:
        doc.verify(registry_key)
    except SignatureError:
        raise ForgedDecisionError("the decision's signature does not verify: it was forged or "
                                  "edited after the registry signed it") from None
    token = doc.payload
    if now > token.expires_at + CLOCK_SKEW:
        raise ExpiredDecisionError(f"the decision token expired at "
                                   f"{format_timestamp(token.expires_at)}")
    if now < token.issued_at - CLOCK_SKEW:
        raise ExpiredDecisionError(f"the decision token is not valid before "
                                   f"{format_timestamp(token.issued_at)} (check this worker's "
                                   "clock)")
    if token.job_id != job_id or token.chunk_id != chunk_id:
        raise DecisionScopeError(f"the decision was issued for {token.job_id}/{token.chunk_id}, "
                                 f"not for {job_id}/{chunk_id}")
    if token.frames != (None if frames is None else (int(frames[0]), int(frames[1]))):
        # A chunk's token is good for its own frames only: replayed on another range (or on
        # the whole shot), it would let a task edit frames the head never handed it.
        issued = "the whole shot" if token.frames is None else \
            f"frames {token.frames[0]}-{token.frames[1]}"
        asked = "the whole shot" if frames is None else f"frames {frames[0]}-{frames[1]}"
        raise DecisionScopeError(f"the decision was issued for {issued}, not for {asked}")
    signed = {i.name: i.sha256 for i in token.inputs}
    if signed != dict(inputs):
        differ = sorted(n for n in set(signed) | set(inputs) if signed.get(n) != inputs.get(n))
        raise DecisionScopeError("the input files differ from those the decision covers: "
                                 + ", ".join(differ))
    return token
