"""A ledger witness: its own key and state, outside the registry's reach.

Following the idea of C2SP tlog-witness: a witness remembers the newest checkpoint it has
cosigned for a log (size and root). It cosigns a newer checkpoint only after checking a
consistency proof from the remembered tree to the new one, so whoever rewrites, truncates
or rolls back the registry's database cannot get a witness to vouch for the result, and
the witness's own log keeps proving how far the ledger had grown. The gate reads that log
(``STUDIO_WITNESS_LOGS``) and refuses to decide on a tree behind it.

Why not the HTTP protocol of tlog-witness: the studio runs offline; the witness is a
separate process (or host) given read access to the database and the registry's public
key, run by ``studio ledger witness``. Its cosignature is an ordinary Ed25519 signed-note
line by the witness key over the same checkpoint text.

State folder: ``witness-ed25519.pem`` (its key), ``witness.vkey`` (verifier key to give
to others), ``state.json`` (the newest cosigned checkpoint), ``cosigned.log`` (every
cosigned checkpoint, append-only, the format of :mod:`consent.checkpoint_log`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consent import merkle
from consent.checkpoint_log import CheckpointLog
from consent.errors import LedgerError
from consent.keys import PrivateKey
from consent.note import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    cosign_note,
    open_checkpoint,
)

#: Given (old size, new size), the consistency proof the registry's storage gives.
ProofSource = Callable[[int, int], Sequence[bytes]]


class WitnessError(LedgerError):
    """The checkpoint offered to the witness is a rollback, a fork or unprovable."""

    code = "ledger.witness_refused"


@dataclass(frozen=True)
class Cosigned:
    checkpoint: Checkpoint
    note: str
    previous_size: int


class Witness:
    def __init__(self, state_dir: Path, name: str = "studio-witness",
                 passphrase: bytes | None = None) -> None:
        self.dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        key_path = state_dir / "witness-ed25519.pem"
        if key_path.exists():
            key = PrivateKey.load(key_path, passphrase)
        else:
            key = PrivateKey.generate()
            key.save(key_path, passphrase)
        self._signer = NoteSigner(name, key.crypto_key)
        self.verifier = self._signer.verifier()
        (state_dir / "witness.vkey").write_text(self.verifier.verifier_key() + "\n")
        self.log = CheckpointLog(state_dir / "cosigned.log")
        self._state = state_dir / "state.json"

    def state(self) -> tuple[str, int, bytes] | None:
        """(origin, size, root) of the newest checkpoint cosigned, if any."""
        if not self._state.exists():
            return None
        value = json.loads(self._state.read_text())
        return value["origin"], int(value["size"]), bytes.fromhex(value["root"])

    def cosign(self, note: str, log_verifier: NoteVerifier, origin: str,
               proof: ProofSource) -> Cosigned:
        """Check ``note`` against the remembered tree, then cosign and remember it."""
        try:
            cp = open_checkpoint(note, log_verifier, origin=origin)
        except NoteError as exc:
            raise WitnessError(f"the checkpoint does not verify with the registry key: "
                               f"{exc}") from exc
        state = self.state()
        old_size = 0
        if state is not None:
            old_origin, old_size, old_root = state
            if old_origin != origin:
                raise WitnessError(f"this witness follows {old_origin}, not {origin}")
            if cp.size < old_size:
                raise WitnessError(f"rollback: the registry's newest checkpoint has size "
                                   f"{cp.size}, but this witness cosigned size {old_size}")
            if cp.size == old_size and cp.root != old_root:
                raise WitnessError(f"fork: size {cp.size} now has another root than the one "
                                   "this witness cosigned")
            if cp.size > old_size:
                try:
                    hashes = list(proof(old_size, cp.size))
                    merkle.verify_consistency(old_size, cp.size, old_root, cp.root, hashes)
                except (merkle.MerkleError, LedgerError) as exc:
                    raise WitnessError(f"the ledger at size {cp.size} is not an extension of "
                                       f"the size {old_size} this witness cosigned: {exc}"
                                       ) from exc
        cosigned = cosign_note(note, self._signer)
        self.log.append([cosigned])
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"origin": origin, "size": cp.size, "root": cp.root.hex(),
                                   "note": cosigned}))
        os.replace(tmp, self._state)
        return Cosigned(cp, cosigned, old_size)
