"""What the gate reads of a stored grant, parsed once per exact byte string.

Why: a decision checks every grant of the performers it names, and parsing one (strict
JSON, then pydantic over ~15 nested models) cost more than its Ed25519 verification. A
parsed grant is a pure function of its bytes, so the gate keeps a compact, immutable
:class:`GrantView` keyed by the SHA-256 of the exact bytes it just read. Never by a grant
id or any other database column: a row whose bytes were changed hashes differently and is
parsed (and refused) afresh. A view is one object the garbage collector tracks (its parts,
tuples of strings and datetimes, are untracked); a cache of parsed pydantic models held ~40
per grant, and the collector's passes over them cost more than re-parsing saved.

A successful signature check is remembered on the same terms (exact bytes' hash, the
signature, the public key's bytes): Ed25519 verification is a pure function of them.
Failures are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import NamedTuple

from consent.documents import Grant, SignedDocument
from consent.errors import SignatureError
from consent.keys import PublicKey, short_id

#: Views kept (least recently used leave first): ~1 kB each, the grants of ~3 000 performers.
VIEW_CACHE_SIZE = 32_768


class GrantView(NamedTuple):
    """The fields of a parsed grant that the gate's rules read, and its signatures.

    Strings, tuples, datetimes and bytes only (enum members as their values: StrEnum
    members compare equal to them): the collector stops tracking the parts, so a view is
    one tracked object (a NamedTuple stays tracked itself). Built in C (a frozen
    dataclass's __init__ cost half again as much as this whole view)."""

    digest: bytes  # SHA-256 of the exact stored bytes
    grant_id: str
    performer_id: str
    signatures: tuple[tuple[str, bytes], ...]  # (key id, signature) as received
    signed_at: datetime
    valid_from: datetime
    valid_until: datetime
    role: str  # SignatoryRole value
    company: str
    #: (project id, episodes, scenes) per project of the grantee.
    projects: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    techniques: tuple[str, ...]  # Technique values
    languages: tuple[str, ...]
    territories: tuple[str, ...]
    channels: tuple[str, ...]  # Channel values
    max_alteration: str  # Alteration value
    ai_training: bool
    script_hash: str | None
    source_media: str | tuple[str, ...]
    after_death: str  # AfterDeathPolicy value
    after_death_until: date | None

    def signature_by(self, key_id: str) -> bytes | None:
        return next((sig for kid, sig in self.signatures if kid == key_id), None)


def view_of(doc: SignedDocument[Grant], digest: bytes) -> GrantView:
    g = doc.payload
    s = g.scope
    return GrantView(
        digest, g.grant_id, g.performer.performer_id,
        tuple([(sig.keyid, sig.sig) for sig in doc.signatures]),
        g.signed_at, g.valid_from, g.valid_until, g.signatory.role.value, g.grantee.company,
        tuple([(p.project_id, p.episodes, p.scenes) for p in g.grantee.projects]),
        tuple([t.value for t in s.techniques]), s.languages, s.territories,
        tuple([c.value for c in s.channels]), s.max_alteration.value, s.ai_training,
        s.script_hash, s.source_media, g.after_death.policy.value, g.after_death.until)


_VIEWS: OrderedDict[bytes, GrantView] = OrderedDict()
_VERIFIED: OrderedDict[tuple[bytes, bytes, bytes], str] = OrderedDict()
_LOCK = threading.Lock()
#: The document parsed last: a cold decision parses a grant, then verifies it at once. One
#: slot, not a cache of parsed models (module docstring: the collector walks those).
_LAST: list[tuple[bytes, SignedDocument[Grant]]] = []


def parse(raw: bytes) -> GrantView:
    """The view of a stored grant; raises :class:`consent.errors.ConsentError` as
    :meth:`SignedDocument.from_bytes` does (a refusal is never remembered)."""
    digest = hashlib.sha256(raw).digest()
    with _LOCK:
        view = _VIEWS.get(digest)
        if view is not None:
            _VIEWS.move_to_end(digest)
            return view
    doc = SignedDocument.from_bytes(raw, Grant, memo=False)
    view = view_of(doc, digest)
    with _LOCK:
        _VIEWS[digest] = view
        _LAST[:] = [(digest, doc)]
        if len(_VIEWS) > VIEW_CACHE_SIZE:
            _VIEWS.popitem(last=False)
    return view


def verify(view: GrantView, raw: bytes, key: PublicKey) -> str:
    """Raise :class:`SignatureError` unless ``key`` signed the grant whose exact bytes are
    ``raw`` (``view`` is their view); return the SHA-256 of its canonical payload (the
    document hash decisions name)."""
    if hashlib.sha256(raw).digest() != view.digest:  # a caller's mix-up: never trust it
        raise SignatureError("grant view does not match the bytes given")
    sig = view.signature_by(key.key_id)
    if sig is None:
        raise SignatureError(f"consent_grant carries no signature by key {short_id(key.key_id)}")
    token = (view.digest, sig, key.raw)
    with _LOCK:
        sha = _VERIFIED.get(token)
        if sha is not None:
            _VERIFIED.move_to_end(token)
            return sha
    with _LOCK:
        last = _LAST[0] if _LAST and _LAST[0][0] == view.digest else None
    doc = last[1] if last is not None else SignedDocument.from_bytes(raw, Grant, memo=False)
    doc.verify(key)
    with _LOCK:
        _VERIFIED[token] = doc.sha256
        if len(_VERIFIED) > VIEW_CACHE_SIZE:
            _VERIFIED.popitem(last=False)
    return doc.sha256


def clear() -> None:
    """Forget every view and remembered check (benchmarks start cold; tests)."""
    with _LOCK:
        _VIEWS.clear()
        _VERIFIED.clear()
        _LAST.clear()
