"""Identity templates: biometric data, encrypted at rest and kept only while consented.

A template is a face-embedding vector enrolled from a performer's reference media. The
registry stores it encrypted with AES-256-GCM under a key from settings; the performer id
and the row id are the associated data, so a ciphertext moved to another performer's row
fails to decrypt instead of matching the wrong person. The ledger holds only hashes.
Templates are deleted once no grant of the performer is active any more (CONSENT.md).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent.errors import ConsentError, NotFoundError
from consent.store import IdentityTemplateRow

# numpy is imported by the functions that handle vectors: the registry imports this module,
# and the consent and ledger commands never touch a template (start-up time).
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

KEY_BYTES = 32


class TemplateKeyError(ConsentError):
    code = "templates.key"


def load_or_create_template_key(path: Path) -> bytes:
    """The AES key for templates: a 0600 file in the data folder, created on first use."""
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise TemplateKeyError(f"{path} must hold exactly {KEY_BYTES} bytes")
        return key
    key = AESGCM.generate_key(bit_length=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Template:
    template_id: str
    performer_id: str
    embedder: str
    vector: NDArray[np.float32]
    template_sha256: str
    source_sha256: str
    quality: dict[str, Any]
    created_at: datetime


def template_hash(vector: NDArray[np.float32]) -> str:
    """SHA-256 of the little-endian float32 bytes: what a grant's evidence can name."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes()).hexdigest()


class TemplateStore:
    """Encrypted template rows in the registry database."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise TemplateKeyError(f"the template key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(template_id: str, performer_id: str, embedder: str) -> bytes:
        return f"{template_id}\x00{performer_id}\x00{embedder}".encode()

    def add(self, s: Session, performer_id: str, embedder: str, vector: NDArray[np.float32],
            source_sha256: str, quality: dict[str, Any], now: datetime) -> Template:
        import numpy as np

        vec = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
        if not np.all(np.isfinite(vec)):
            raise ConsentError("a template vector has non-finite values")
        template_id = f"tpl-{uuid.uuid4().hex}"
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, vec.tobytes(),
                                          self._aad(template_id, performer_id, embedder))
        digest = template_hash(vec)
        s.add(IdentityTemplateRow(template_id=template_id, performer_id=performer_id,
                                  embedder=embedder, dim=int(vec.size), ciphertext=blob,
                                  template_sha256=digest, source_sha256=source_sha256,
                                  quality=quality, created_at=now))
        s.flush()
        return Template(template_id, performer_id, embedder, vec, digest, source_sha256,
                        quality, now)

    def load(self, s: Session, *, performer_ids: list[str] | None = None,
             embedder: str | None = None) -> list[Template]:
        import numpy as np

        query = select(IdentityTemplateRow).order_by(IdentityTemplateRow.created_at)
        if performer_ids is not None:
            query = query.where(IdentityTemplateRow.performer_id.in_(performer_ids))
        if embedder is not None:
            query = query.where(IdentityTemplateRow.embedder == embedder)
        out = []
        for row in s.scalars(query):
            try:
                nonce, body = row.ciphertext[:12], row.ciphertext[12:]
                plain = self._aead.decrypt(nonce, body, self._aad(row.template_id,
                                                                  row.performer_id, row.embedder))
            except InvalidTag:
                # A row that does not decrypt was altered or moved: it matches nobody.
                continue
            vec = np.frombuffer(plain, dtype="<f4").copy()
            if vec.size != row.dim or template_hash(vec) != row.template_sha256:
                continue
            out.append(Template(row.template_id, row.performer_id, row.embedder, vec,
                                row.template_sha256, row.source_sha256, dict(row.quality),
                                row.created_at))
        return out

    @staticmethod
    def hashes_of(s: Session, performer_id: str) -> list[str]:
        return list(s.scalars(select(IdentityTemplateRow.template_sha256).where(
            IdentityTemplateRow.performer_id == performer_id)))

    @staticmethod
    def delete_for(s: Session, performer_id: str) -> list[str]:
        hashes = TemplateStore.hashes_of(s, performer_id)
        if not hashes:
            raise NotFoundError(f"{performer_id} has no enrolled templates")
        s.execute(delete(IdentityTemplateRow).where(
            IdentityTemplateRow.performer_id == performer_id))
        return hashes
