"""Settings: one data folder holds the database, keys, certificates and outputs.

Everything has an embedded default so that a fresh checkout runs with no configuration;
environment variables (``STUDIO_*``) override them for a real deployment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ORIGIN = "studio.local/consent-ledger"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    ledger_origin: str = DEFAULT_ORIGIN
    registry_passphrase: bytes | None = None
    #: A local insightface ArcFace model folder (``w600k_r50.onnx`` + its licence file);
    #: when unset, identity embeddings come from dlib's ResNet that ships in a wheel.
    insightface_dir: Path | None = None

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def registry_key_path(self) -> Path:
        return self.keys_dir / "registry-ed25519.pem"

    @property
    def template_key_path(self) -> Path:
        """AES-256 key that encrypts identity templates at rest."""
        return self.keys_dir / "templates-aes256.key"

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        data = (data_dir or Path(os.environ.get("STUDIO_DATA", "studio-data"))).resolve()
        url = os.environ.get("STUDIO_DATABASE_URL") or f"sqlite:///{data / 'studio.db'}"
        passphrase = os.environ.get("STUDIO_REGISTRY_PASSPHRASE")
        return cls(
            data_dir=data,
            database_url=url,
            ledger_origin=os.environ.get("STUDIO_LEDGER_ORIGIN", DEFAULT_ORIGIN),
            registry_passphrase=passphrase.encode() if passphrase else None,
            insightface_dir=Path(os.environ["STUDIO_INSIGHTFACE_DIR"])
            if os.environ.get("STUDIO_INSIGHTFACE_DIR") else None,
        )
