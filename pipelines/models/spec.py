"""The data types of the model registry: a licence, a file, a backend's manifest.

Kept apart from :mod:`pipelines.models.registry` (the behaviour) so that
:mod:`pipelines.models.manifests` (the data) can import them without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelLicence:
    """What a model's licence allows, as far as the studio's gate is concerned."""

    licence: str
    """SPDX-like identifier(s), e.g. ``"MIT"`` or ``"CreativeML-OpenRAIL-M"``."""
    commercial: bool
    """Whether a commercial production may run it. False for research-only licences."""
    conditions: str = ""
    """What the licence asks of a user who runs it (use restrictions, attribution)."""
    url: str = ""
    """Where the licence text (or the model card that states it) is published."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a backend's checkpoint folder."""

    path: str
    """Relative path inside the backend's folder, with forward slashes."""
    sha256: str | None
    """Published SHA-256 (lower-case hex), or None where no published hash is known: such a
    file is checked against a locally pinned hash (trust on first use) instead."""
    size: int | None
    """Exact size in bytes, checked before hashing; None where not known for certain."""
    licence: ModelLicence
    description: str = ""
    reported_size: int | None = None
    """A size quoted by third parties (not checked: shown to help an operator find the
    right file)."""
    source: str = ""
    """Where the public file is published."""


@dataclass(frozen=True)
class BackendManifest:
    """Everything a backend needs on disk."""

    backend: str
    description: str
    files: tuple[ModelFile, ...]
    code_licence: str = ""
    """Licence of the reference code this backend reimplements (not of the weights)."""

    def file(self, path: str) -> ModelFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(f"{self.backend} has no file {path!r}")

    @property
    def licence(self) -> ModelLicence:
        """The combined licence of every file: commercial only if every file allows it."""
        names: list[str] = []
        conditions: list[str] = []
        for f in self.files:
            if f.licence.licence not in names:
                names.append(f.licence.licence)
            if f.licence.conditions and f.licence.conditions not in conditions:
                conditions.append(f.licence.conditions)
        return ModelLicence(
            licence=" AND ".join(names),
            commercial=all(f.licence.commercial for f in self.files),
            conditions=" ".join(conditions),
        )
