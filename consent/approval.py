"""Performer approval of outputs: the signed approval's draft, and what the ledger's leaves
say about each output's approval.

A grant of schema version 2 may say ``approval: required``. Every output rendered under such
a grant is then *held*: its ``output_published`` leaf names the grants whose performer must
approve it (``approval_required``), and it may be delivered only once each of them has
signed an ``output_approval`` document over the output's SHA-256 with ``decision:
approved`` and the consent officer imported it (``approval_recorded`` leaf). A rejection
(``approval_rejected`` leaf), or no approval yet, means not deliverable.

The status is derived from the leaves alone (:class:`ApprovalLeaves`, fed by
:class:`consent.ledger_facts.LedgerFacts`, which checks every leaf against the signed
checkpoints), never from the ``approvals`` table or the ``ledger_refs`` index, which a
database owner could edit. It fails closed:

* an approval counts only once a signed checkpoint covers its leaf, and only while the key
  that signed it is not revoked (a compromised key's approvals stop counting, as its grants
  stop passing the gate); a rejection always counts;
* per required grant, the performer's newest counted decision stands (a performer may
  reject, then approve a re-examined output, or the reverse);
* one rejection among several required performers makes the output rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from consent.fields import ApprovalDecision, format_timestamp

#: The leaves this view reads (besides nothing else: documents are the registry's business).
APPROVAL_EVENTS = frozenset({"output_published", "approval_recorded", "approval_rejected"})


class ApprovalState(StrEnum):
    NOT_REQUIRED = "not_required"
    AWAITING = "awaiting"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def deliverable(self) -> bool:
        return self in (ApprovalState.NOT_REQUIRED, ApprovalState.APPROVED)


@dataclass(frozen=True)
class RequiredApproval:
    grant_id: str
    performer_id: str


@dataclass(frozen=True)
class OutputFact:
    """An ``output_published`` leaf: when, and whose approval the output waits for."""

    index: int
    time: datetime
    required: tuple[RequiredApproval, ...]


@dataclass(frozen=True)
class ApprovalFact:
    """An ``approval_recorded`` / ``approval_rejected`` leaf."""

    index: int
    time: datetime
    approval_id: str
    approval_sha256: str
    performer_id: str
    grant_id: str
    output_sha256: str
    decision: ApprovalDecision
    signer_key_id: str

    def to_json(self) -> dict[str, Any]:
        return {"approval_id": self.approval_id, "approval_sha256": self.approval_sha256,
                "performer_id": self.performer_id, "grant_id": self.grant_id,
                "decision": self.decision.value, "signer_key_id": self.signer_key_id,
                "ledger_index": self.index, "recorded_at": format_timestamp(self.time)}


@dataclass(frozen=True)
class ApprovalStatus:
    """One output's approval, as the leaves say now."""

    output_sha256: str
    state: ApprovalState
    required: tuple[RequiredApproval, ...] = ()
    #: The decision that stands for each required grant (absent: none counted yet).
    decisions: tuple[ApprovalFact, ...] = ()
    #: Why a recorded decision does not count (key revoked since, not yet checkpointed).
    ignored: tuple[str, ...] = ()
    published_index: int | None = None

    @property
    def deliverable(self) -> bool:
        return self.state.deliverable

    def to_json(self) -> dict[str, Any]:
        return {"output_sha256": self.output_sha256, "state": self.state.value,
                "deliverable": self.deliverable,
                "required": [r.__dict__ for r in self.required],
                "decisions": [d.to_json() for d in self.decisions],
                "ignored": list(self.ignored), "published_index": self.published_index}


@dataclass
class ApprovalLeaves:
    """Outputs and approvals read from the leaves (incrementally, by ``LedgerFacts``)."""

    outputs: dict[str, OutputFact] = field(default_factory=dict)
    approvals: dict[str, list[ApprovalFact]] = field(default_factory=dict)

    def add(self, idx: int, event: str, body: Mapping[str, Any], time: datetime) -> None:
        """Record one leaf; a malformed body raises KeyError/TypeError/ValueError (the
        caller reports it as tampering)."""
        if event == "output_published":
            sha = str(body["output_sha256"])
            required = tuple(RequiredApproval(str(r["grant_id"]), str(r["performer_id"]))
                             for r in body.get("approval_required", ()))
            known = self.outputs.get(sha)
            if known is not None:  # published twice (a re-render of the same bytes): union
                required = tuple(dict.fromkeys((*known.required, *required)))
                self.outputs[sha] = OutputFact(known.index, known.time, required)
            else:
                self.outputs[sha] = OutputFact(idx, time, required)
            return
        fact = ApprovalFact(idx, time, str(body["approval_id"]), str(body["approval_sha256"]),
                            str(body["performer_id"]), str(body["grant_id"]),
                            str(body["output_sha256"]), ApprovalDecision(body["decision"]),
                            str(body["signer_key_id"]))
        expected = (ApprovalDecision.APPROVED if event == "approval_recorded"
                    else ApprovalDecision.REJECTED)
        if fact.decision is not expected:
            raise ValueError(f"{event} leaf records decision {fact.decision.value}")
        self.approvals.setdefault(fact.output_sha256, []).append(fact)

    def status(self, output_sha256: str, key_status: Callable[[str], str],
               covered: int) -> ApprovalStatus | None:
        """The output's approval (None: no ``output_published`` leaf names it).

        ``key_status``: a key id's status from the leaves; ``covered``: the tree size the
        newest matching signed checkpoint covers."""
        output = self.outputs.get(output_sha256)
        if output is None:
            return None
        if not output.required:
            return ApprovalStatus(output_sha256, ApprovalState.NOT_REQUIRED,
                                  published_index=output.index)
        standing: list[ApprovalFact] = []
        ignored: list[str] = []
        rejected = awaiting = False
        for need in output.required:
            latest: ApprovalFact | None = None
            for fact in self.approvals.get(output_sha256, ()):
                if (fact.grant_id, fact.performer_id) != (need.grant_id, need.performer_id):
                    continue
                if fact.decision is ApprovalDecision.APPROVED:
                    if key_status(fact.signer_key_id) == "revoked":
                        ignored.append(f"approval {fact.approval_id}: signing key "
                                       f"{fact.signer_key_id[:12]} has since been revoked")
                        continue
                    if fact.index >= covered:
                        ignored.append(f"approval {fact.approval_id}: not yet covered by a "
                                       "signed checkpoint")
                        continue
                if latest is None or fact.index > latest.index:
                    latest = fact
            if latest is None:
                awaiting = True
                continue
            standing.append(latest)
            if latest.decision is ApprovalDecision.REJECTED:
                rejected = True
        state = (ApprovalState.REJECTED if rejected else ApprovalState.AWAITING if awaiting
                 else ApprovalState.APPROVED)
        return ApprovalStatus(output_sha256, state, output.required, tuple(standing),
                              tuple(ignored), output.index)


def approval_draft(*, performer_id: str, grant_id: str, output_sha256: str,
                   decision: ApprovalDecision, signer_role: str, signer_name: str,
                   signed_at: datetime, note: str | None = None) -> dict[str, Any]:
    """The body of an ``output_approval`` for :func:`consent.documents.sign_draft`."""
    draft: dict[str, Any] = {
        "approval_id": f"appr-{uuid.uuid4().hex}", "performer_id": performer_id,
        "grant_id": grant_id, "output_sha256": output_sha256, "decision": decision.value,
        "signed_by": {"role": signer_role, "name": signer_name},
        "signed_at": format_timestamp(signed_at)}
    if note is not None:
        draft["note"] = note
    return draft
