"""Local model registry: the files each neural backend needs, their hashes and licences.

See :mod:`pipelines.models.registry` for the API and :mod:`pipelines.models.manifests` for
the data. Nothing here downloads: an operator places checkpoint files in a folder and the
registry checks them.
"""

from pipelines.models.registry import (
    BackendManifest,
    CommercialUseError,
    FileCheck,
    ModelFile,
    ModelFileError,
    ModelLicence,
    PinStore,
    UnknownBackendError,
    backend_dir,
    backends,
    cached_sha256,
    check_commercial_use,
    licence,
    manifest,
    models_root,
    require_files,
    verify_folder,
)

__all__ = [
    "BackendManifest",
    "CommercialUseError",
    "FileCheck",
    "ModelFile",
    "ModelFileError",
    "ModelLicence",
    "PinStore",
    "UnknownBackendError",
    "backend_dir",
    "backends",
    "cached_sha256",
    "check_commercial_use",
    "licence",
    "manifest",
    "models_root",
    "require_files",
    "verify_folder",
]
