"""A saved copy of the ledger view (:class:`consent.ledger_facts.LedgerFacts`), so that a new
process does not read and hash every leaf again before its first decision.

Why it can be trusted, and only so far:

* It is written only from a view without findings whose whole tree is covered by a signed
  checkpoint it matched (``covered == size``): the state a checkpoint vouches for.
* It is authenticated with an HMAC keyed from the registry's private key (whoever can
  forge it can sign checkpoints too). A file that fails the check, names another origin
  or another format is ignored, and the view is built from the leaves as before.
* Before it is used, the database must still hold that tree: the root recomputed from the
  stored nodes at the saved size must equal the saved root. Otherwise it is ignored (the
  full read then names what changed). After that the view goes on exactly as a long-running
  process does: it re-reads the saved last leaf and compares its hash, reads every newer
  leaf, and checks every checkpoint written since (database and log files, from the saved
  offsets), so a truncated or rolled-back database still denies.

The per-performer facts stay JSON text until a decision names the performer, so loading
costs a file read, one HMAC and one JSON parse of the outer object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

FORMAT = "consent-ledger-view/2"
_MAC_BYTES = 64  # hex of HMAC-SHA256


def mac_key(private_raw: bytes) -> bytes:
    """The snapshot's HMAC key, derived from the registry's private key bytes."""
    return hashlib.sha256(b"consent ledger view snapshot\0" + private_raw).digest()


def write(path: Path, key: bytes, state: Mapping[str, Any], performers: Mapping[str, str]
          ) -> None:
    """Write atomically (a reader sees the old file or the new one, never half of one).

    Layout: the HMAC (hex) of everything after its line; one line of JSON (``state``); then
    one line per performer, ``<id> TAB <JSON>``, kept as text until first needed."""
    lines = [json.dumps({"format": FORMAT, **state}, separators=(",", ":")).encode()]
    for pid, text in performers.items():
        if "\t" in pid or "\n" in pid or "\n" in text:
            raise ValueError(f"performer id {pid!r} cannot be written to a saved view")
        lines.append(f"{pid}\t{text}".encode())
    body = b"\n".join(lines)
    tag = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    # Unique per writer (processes, and registries within one process).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("wb") as fh:
            fh.write(tag + b"\n" + body)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path: Path, key: bytes, origin: str
         ) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """The saved state and each performer's JSON text, or None when there is no file or it
    is not ours (see the module doc)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    tag, body = data[:_MAC_BYTES], data[_MAC_BYTES + 1:]
    expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    if len(data) <= _MAC_BYTES or not hmac.compare_digest(tag, expected):
        return None
    head, *lines = body.split(b"\n")
    try:
        state = json.loads(head)
        performers = {}
        for line in lines:
            pid, tab, text = line.partition(b"\t")
            if not tab:
                return None
            performers[pid.decode()] = text
    except (ValueError, UnicodeDecodeError):
        return None
    if (not isinstance(state, dict) or state.get("format") != FORMAT
            or state.get("origin") != origin):
        return None
    return state, performers


def fact_row(fact: Any) -> list[Any]:
    """A DocumentFact as a JSON row."""
    return [fact.index, fact.time.isoformat(), fact.event, fact.performer_id,
            fact.payload_sha256, fact.raw_sha256, fact.detail]


def fact_args(row: list[Any]) -> tuple[Any, ...]:
    """DocumentFact constructor arguments from :func:`fact_row`."""
    index, time, event, pid, payload, raw, detail = row
    return (int(index), datetime.fromisoformat(time), str(event), str(pid), str(payload),
            None if raw is None else str(raw), None if detail is None else str(detail))


def rows(mapping: Mapping[Any, Any]) -> Iterator[list[Any]]:
    for key, fact in mapping.items():
        yield [key, fact_row(fact)]
