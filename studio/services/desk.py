"""The consent desk: performers and their keys, production keys, grants, revocations and
revocation reports. The consent officer's use cases; the registry signs and ledgers each.

Front ends read files and uploads; these take their bytes (a public key's PEM, a signed
document) and the officer's name as it goes into the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from consent.approval import ApprovalStatus
from consent.canonical import parse_json
from consent.documents import (
    PerformerRecord,
    Revocation,
    SignedDocument,
)
from consent.fields import SignatoryRole
from consent.keys import load_public_key
from consent.registry import GrantStatus, KeyStatus, RevocationReport
from studio.errors import UsageError
from studio.services.context import AppContext


@dataclass(frozen=True)
class KeyHolder:
    """Who holds a performer's key: the performer, a guardian, an estate…"""

    role: SignatoryRole = SignatoryRole.SELF
    name: str | None = None
    authority_evidence: str | None = None


@dataclass(frozen=True)
class PerformerRegistration:
    performer_id: str
    legal_name: str
    public_key_pem: bytes
    officer: str
    professional_name: str | None = None
    holder: KeyHolder = KeyHolder()
    minor_until: date | None = None
    deceased_on: date | None = None


@dataclass(frozen=True)
class Registered:
    performer_id: str
    key_id: str


def register_performer(ctx: AppContext, req: PerformerRegistration) -> Registered:
    """Register a performer and their first key."""
    if not req.performer_id.strip() or not req.legal_name.strip():
        raise UsageError("a performer id and a legal name are required")
    key = load_public_key(req.public_key_pem)
    reg = ctx.registry
    reg.register_performer(req.performer_id, req.legal_name, officer=req.officer,
                           professional_name=req.professional_name,
                           minor_until=req.minor_until, deceased_on=req.deceased_on)
    reg.add_key(req.performer_id, key, officer=req.officer, holder_role=req.holder.role,
                holder_name=req.holder.name, authority_evidence=req.holder.authority_evidence)
    return Registered(req.performer_id, key.key_id)


def add_key(ctx: AppContext, performer_id: str, public_key_pem: bytes, *, officer: str,
            holder: KeyHolder = KeyHolder()) -> Registered:
    """Register another key for a performer (a guardian's, an estate's)."""
    key = load_public_key(public_key_pem)
    ctx.registry.add_key(performer_id, key, officer=officer, holder_role=holder.role,
                         holder_name=holder.name, authority_evidence=holder.authority_evidence)
    return Registered(performer_id, key.key_id)


def rotate_key(ctx: AppContext, performer_id: str, old_key_id: str, public_key_pem: bytes, *,
               officer: str) -> Registered:
    """Replace a performer's key: the old one signs nothing new; its grants stay valid."""
    key = load_public_key(public_key_pem)
    ctx.registry.rotate_key(performer_id, old_key_id, key, officer=officer)
    return Registered(performer_id, key.key_id)


def add_production_key(ctx: AppContext, company: str, public_key_pem: bytes, *,
                       officer: str) -> str:
    """Register a production company's countersigning key; returns its key id."""
    key = load_public_key(public_key_pem)
    ctx.registry.add_production_key(company, key, officer=officer)
    return key.key_id


@dataclass(frozen=True)
class Imported:
    """A signed document recorded: a grant (``grant``) or a performer's revocation."""

    grant: GrantStatus | None = None
    revocation: Revocation | None = None


def import_document(ctx: AppContext, raw: bytes, *, officer: str) -> Imported:
    """Verify a signed grant, or a revocation the performer signed, and record it."""
    body = parse_json(raw)
    signed = body.get("signed") if isinstance(body, dict) else None
    kind = signed.get("type") if isinstance(signed, dict) else None
    if kind == "consent_revocation":
        return Imported(revocation=ctx.registry.import_revocation(raw, officer=officer).payload)
    return Imported(grant=ctx.registry.import_grant(raw, officer=officer))


def import_grant(ctx: AppContext, raw: bytes, *, officer: str) -> GrantStatus:
    """Verify a signed grant and record it."""
    return ctx.registry.import_grant(raw, officer=officer)


def import_approval(ctx: AppContext, raw: bytes, *, officer: str) -> ApprovalStatus:
    """Verify a performer's signed approval (or rejection) of a published output and record
    it (ledgered); the output's approval status afterwards. The CLI's ``consent
    import-approval`` and the studio's review page both call this."""
    return ctx.registry.import_approval(raw, officer=officer)


@dataclass(frozen=True)
class RevocationOrder:
    """A revocation the officer records on the performer's request: of a grant, or of a key
    (lost or compromised: every grant it signed stops)."""

    officer: str
    reason: str
    request_reference: str
    grant_id: str | None = None
    key_id: str | None = None


def revoke(ctx: AppContext, order: RevocationOrder) -> SignedDocument[Revocation]:
    """Record the revocation; it stops every future render at once."""
    if (order.grant_id is None) == (order.key_id is None):
        raise UsageError("give exactly one of a grant or a key to revoke")
    if not order.reason.strip() or not order.request_reference.strip():
        raise UsageError("a reason and the performer's request reference (letter, e-mail, "
                         "call) are both required")
    reg = ctx.registry
    if order.grant_id is not None:
        return reg.revoke_grant(order.grant_id, reason=order.reason, officer=order.officer,
                                performer_request_reference=order.request_reference)
    assert order.key_id is not None
    return reg.revoke_key(order.key_id, reason=order.reason, officer=order.officer,
                          performer_request_reference=order.request_reference)


def revocation_report(ctx: AppContext, grant_id: str) -> RevocationReport:
    """Every output published under a grant (to withdraw after a revocation)."""
    if not grant_id.strip():
        raise UsageError("choose a grant")
    return ctx.registry.revocation_report(grant_id)


def grants(ctx: AppContext, *, performer_id: str | None = None,
           project_id: str | None = None) -> list[GrantStatus]:
    """Grants and their status now, as the gate sees them."""
    return ctx.registry.grants(performer_id=performer_id, project_id=project_id)


@dataclass(frozen=True)
class PerformerView:
    performer: PerformerRecord
    keys: list[KeyStatus]

    @property
    def status(self) -> str:
        p = self.performer
        return ("deceased" if p.deceased_on else f"minor until {p.minor_until}"
                if p.minor_until else "")

    def to_json(self) -> dict[str, Any]:
        return {**self.performer.model_dump(mode="json"),
                "keys": [k.to_json() for k in self.keys]}


def performers(ctx: AppContext) -> list[PerformerView]:
    """Registered performers with their keys (active, retired, revoked)."""
    reg = ctx.registry
    return [PerformerView(p, reg.keys(p.performer_id)) for p in reg.performers()]
