"""The ledger, for auditors and consent officers: signed checkpoints, inclusion and
consistency proofs (verified before they are handed out), full verification, search by
reference, the witness, and the PostgreSQL role the studio connects as."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consent.ledger import (
    ConsistencyProof,
    EventType,
    InclusionProof,
    Ledger,
    LedgerEntry,
    LedgerReport,
)
from consent.registry import utc_now
from studio.errors import UsageError
from studio.services.context import AppContext
from studio.settings import Settings

if TYPE_CHECKING:
    from consent.witness import Cosigned

SEARCH_KINDS = frozenset({"grant", "output", "decision", "performer", "key"})


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint (C2SP signed note; ``None`` before the first), the ledger's size
    now and the verifier key that checks the note."""

    note: str | None
    size: int
    verifier_key: str


def latest_checkpoint(ctx: AppContext) -> Checkpoint:
    reg = ctx.registry
    with reg.store.session() as s:
        note, size = Ledger.latest_checkpoint(s), Ledger.size(s)
    return Checkpoint(note, size, reg.ledger.verifier.verifier_key())


def sign_checkpoint(ctx: AppContext) -> Checkpoint:
    """Sign a checkpoint of the ledger as it is now."""
    reg = ctx.registry
    with reg.store.session() as s:
        note = reg.ledger.checkpoint(s, utc_now())
        size = Ledger.size(s)
    return Checkpoint(note, size, reg.ledger.verifier.verifier_key())


@dataclass(frozen=True)
class EntryProof:
    """An entry and its inclusion proof (verified)."""

    origin: str
    entry: LedgerEntry
    proof: InclusionProof

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "entry": self.entry.body,
                "event": self.entry.event_type.value, **self.proof.to_json()}


def inclusion_proof(ctx: AppContext, index: int, size: int | None = None) -> EntryProof:
    reg = ctx.registry
    with reg.store.session() as s:
        proof = reg.ledger.inclusion_proof(s, index, size)
        entry = Ledger.entry(s, index)
    proof.verify()
    return EntryProof(reg.ledger.origin, entry, proof)


def consistency_proof(ctx: AppContext, old_size: int, new_size: int | None = None
                      ) -> ConsistencyProof:
    reg = ctx.registry
    with reg.store.session() as s:
        proof = reg.ledger.consistency_proof(s, old_size,
                                             Ledger.size(s) if new_size is None else new_size)
    proof.verify()
    return proof


def verify_ledger(ctx: AppContext) -> LedgerReport:
    """Recompute the whole ledger from its stored entries; a checkpoint that the data
    folder's checkpoint log or any witness's log holds must still match."""
    from consent.checkpoint_log import CheckpointLog

    reg = ctx.registry
    logs = [*([reg.ledger.log] if reg.ledger.log else []),
            *map(CheckpointLog, ctx.settings.witness_logs)]
    with reg.store.session() as s:
        return reg.ledger.verify(s, logs=logs)


def search(ctx: AppContext, kind: str, ref_id: str) -> list[LedgerEntry]:
    """Every entry that references a grant, output (by sha256), decision, performer or key."""
    kind, ref = (kind or "grant").strip(), (ref_id or "").strip()
    if kind not in SEARCH_KINDS:
        raise UsageError(f"search by one of {', '.join(sorted(SEARCH_KINDS))}")
    if not ref:
        raise UsageError(f"give a {kind} id (an output is found by its sha256)")
    with ctx.registry.store.session() as s:
        return Ledger.entries_referencing(s, kind, ref)


def grant_role(settings: Settings, role: str) -> None:
    """PostgreSQL: migrate as the owner (these settings' database URL), then let ``role``
    INSERT and SELECT the ledger and document tables, never UPDATE or DELETE them."""
    from consent import write_guards
    from consent.errors import ConsentError
    from consent.store import Store

    store = Store.open(settings.database_url)
    try:
        if store.dialect != "postgresql":
            raise ConsentError("roles exist on PostgreSQL only; SQLite is guarded by triggers")
        with store.engine.begin() as conn:
            write_guards.grant_app_role(conn, role)
    finally:
        store.dispose()


@dataclass(frozen=True)
class WitnessSetup:
    state: Path  # the witness's own folder (key, state, cosigned log)
    name: str = "studio-witness"
    registry_key: Path | None = None  # the registry's public key (default: the data folder's)
    publish: bool = False  # also append the cosigned checkpoint to the checkpoint log
    passphrase: bytes | None = None


class Witnessing:
    """A witness of this ledger: :meth:`cosign` cosigns the newest checkpoint only if it
    extends the last one this witness cosigned (else :class:`consent.witness.WitnessError`).
    """

    def __init__(self, settings: Settings, setup: WitnessSetup) -> None:
        from consent.keys import load_public_key
        from consent.store import Store
        from consent.witness import Witness

        self.settings, self.setup = settings, setup
        key_path = setup.registry_key or settings.registry_key_path.with_suffix(".pub")
        self.verifier = Ledger.verifier_for(settings.ledger_origin,
                                            load_public_key(key_path.read_bytes()))
        self.witness = Witness(setup.state, setup.name, setup.passphrase)
        self.store = Store.open(settings.database_url, migrate_schema=False)

    def cosign(self) -> Cosigned:
        import functools

        from consent.checkpoint_log import CheckpointLog
        from consent.errors import NotFoundError
        from consent.ledger import node_reader

        with self.store.session() as s:
            note = Ledger.latest_checkpoint(s)
            if note is None:
                raise NotFoundError("the ledger has no signed checkpoint yet")
            done = self.witness.cosign(note, self.verifier, self.settings.ledger_origin,
                                       functools.partial(_proof, node_reader(s)))
        if self.setup.publish:
            CheckpointLog(self.settings.checkpoint_log_path).append([done.note])
        return done

    @property
    def verifier_key(self) -> str:
        return self.witness.verifier.verifier_key()

    def close(self) -> None:
        self.store.dispose()


def _proof(read: Callable[..., Any], old_size: int, new_size: int) -> list[bytes]:
    from consent import merkle

    return merkle.consistency_proof(old_size, new_size, read)


__all__ = ["SEARCH_KINDS", "Checkpoint", "EntryProof", "EventType", "Witnessing",
           "consistency_proof", "grant_role", "inclusion_proof", "latest_checkpoint",
           "search", "sign_checkpoint", "verify_ledger"]
