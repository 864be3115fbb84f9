"""Which backend renders a project, what model and licence it brings, and building it.

The embedded backends (``embedded-mesh``) need no model files and run anywhere. Neural ones
(``musetalk-1.5`` for lip-sync, ``liveportrait`` for reenactment) load an operator's local
checkpoint folder through the model registry (``pipelines.models.registry``): a missing or
wrong file is an error naming it, its expected hash and its place; nothing downloads.

Choice, most specific first: ``<data>/projects.yaml``::

    feature-x:
      lipsync: musetalk-1.5
      reenact: liveportrait

then ``STUDIO_LIPSYNC_BACKEND`` / ``STUDIO_REENACT_BACKEND``, then ``embedded-mesh``. A project
may also declare ``commercial: false`` (a student film, an internal test); a project declared
commercial, or not declared, is commercial, whatever a request says. The model
and its licence go to the consent gate with every request (``ModelUse``; a commercial project
is denied a model whose licence forbids commercial use) and into the C2PA ``softwareAgent``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import yaml

from consent.gate import ModelUse
from pipelines.models import registry
from studio.errors import BackendError as BackendError

if TYPE_CHECKING:
    from pipelines.faces.analysis import ShotAnalysis
    from pipelines.lipsync.interface import LipSyncBackend
    from pipelines.reenact.interface import ReenactBackend
    from pipelines.reenact.pipeline import ReenactJob
    from studio.settings import Settings

Operation = Literal["lipsync", "reenact"]
EMBEDDED: Final = "embedded-mesh"
NEURAL: Final[dict[str, tuple[str, ...]]] = {"lipsync": ("musetalk-1.5",),
                                            "reenact": ("liveportrait",)}


@dataclass(frozen=True)
class BackendChoice:
    name: str
    model: str
    licence: str
    commercial: bool

    @property
    def neural(self) -> bool:
        return self.name != EMBEDDED

    def model_use(self) -> ModelUse:
        return ModelUse(backend=self.name, model=self.model, licence=self.licence,
                        commercial_use=self.commercial)


def _projects(settings: Settings) -> Mapping[str, Any]:
    path = settings.data_dir / "projects.yaml"
    if not path.is_file():
        return {}
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BackendError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(value, dict):
        raise BackendError(f"{path} must map project ids to their backends")
    return value


def choose(settings: Settings, project_id: str, operation: Operation) -> BackendChoice:
    """The backend that renders ``operation`` for ``project_id`` (module docstring)."""
    per_project = _projects(settings).get(project_id) or {}
    name = (per_project.get(operation) if isinstance(per_project, dict) else None) \
        or os.environ.get(f"STUDIO_{operation.upper()}_BACKEND") or EMBEDDED
    name = str(name)
    if name == EMBEDDED:
        return BackendChoice(EMBEDDED, "embedded mesh warp (no model weights)",
                             "Apache-2.0", True)
    if name not in NEURAL[operation]:
        raise BackendError(f"backend {name!r} cannot {operation}; choose {EMBEDDED} or "
                           f"{', '.join(NEURAL[operation])}")
    lic = registry.licence(name)
    return BackendChoice(name, registry.manifest(name).description, lic.licence, lic.commercial)


def project_commercial(settings: Settings, project_id: str, requested: bool) -> bool:
    """Whether ``project_id`` is a commercial production: ``projects.yaml`` decides when it
    says so (a request cannot make a commercial project non-commercial), else the request."""
    entry = _projects(settings).get(project_id)
    if isinstance(entry, dict) and "commercial" in entry:
        declared = entry["commercial"]
        if not isinstance(declared, bool):
            raise BackendError(f"projects.yaml: {project_id}.commercial must be true or false")
        return declared
    return requested


def project_unmatched_faces(settings: Settings, project_id: str, requested: str) -> str:
    """``deny`` when ``projects.yaml`` says ``unmatched_faces: deny`` for ``project_id`` or the
    request asks for it; a request cannot turn a project's ``deny`` into leaving faces."""
    entry = _projects(settings).get(project_id)
    declared = entry.get("unmatched_faces") if isinstance(entry, dict) else None
    if declared not in (None, "deny", "leave_untouched"):
        raise BackendError(f"projects.yaml: {project_id}.unmatched_faces must be deny or "
                           "leave_untouched")
    return "deny" if "deny" in (declared, requested) else "leave_untouched"


def device() -> str:
    """``STUDIO_DEVICE`` (cpu, cuda, cuda:1 …), else CUDA when present."""
    wanted = os.environ.get("STUDIO_DEVICE", "auto")
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def lipsync_backend(settings: Settings, choice: BackendChoice) -> LipSyncBackend:
    if not choice.neural:
        from pipelines.lipsync import EmbeddedLipSync

        return EmbeddedLipSync()
    from pipelines.lipsync.musetalk import MuseTalkBackend

    root = registry.models_root(settings.data_dir)
    return MuseTalkBackend.from_pretrained(registry.backend_dir(choice.name, root),
                                           device=device(),
                                           pins=registry.PinStore.for_root(root))


def reenact_backend(settings: Settings, choice: BackendChoice, job: ReenactJob,
                    drivers: Mapping[int, ShotAnalysis] | None) -> ReenactBackend:
    if not choice.neural:
        from pipelines.reenact import EmbeddedReenact

        return EmbeddedReenact()
    if drivers is None:
        raise BackendError(f"{choice.name} animates from the driving video's pixels: give the "
                           "driving video (--driver), not a motion file")
    from pipelines.reenact.liveportrait import LivePortraitModels, LivePortraitReenact

    root = registry.models_root(settings.data_dir)
    models = LivePortraitModels.from_pretrained(registry.backend_dir(choice.name, root),
                                                device(), pins=registry.PinStore.for_root(root))
    return LivePortraitReenact.for_job(models, job, drivers)
