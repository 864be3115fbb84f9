"""LivePortrait-compatible neural reenactment (our implementation; MIT-licensed weights).

``networks`` / ``layers``: the five networks with the public checkpoints' parameter names and
shapes; ``config``: their full and reduced configurations; ``models``: building, strict loading
(through the model registry) and inference; ``camera``: pose bins, rotations, keypoints;
``crop``: crops from our mediapipe meshes and the paste-back; ``backend``: the
``ReenactBackend``; ``bench``: frames per second with random weights.

Names are imported on first use (``pipelines._lazy``): importing one submodule does not load
the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines._lazy import exports

_EXPORTS = {
    "BACKEND": "pipelines.reenact.liveportrait.models",
    "CHECKPOINTS": "pipelines.reenact.liveportrait.models",
    "FULL": "pipelines.reenact.liveportrait.config",
    "LivePortraitConfig": "pipelines.reenact.liveportrait.config",
    "LivePortraitDriver": "pipelines.reenact.liveportrait.backend",
    "LivePortraitEdit": "pipelines.reenact.liveportrait.backend",
    "LivePortraitModels": "pipelines.reenact.liveportrait.models",
    "LivePortraitReenact": "pipelines.reenact.liveportrait.backend",
    "LivePortraitSettings": "pipelines.reenact.liveportrait.backend",
    "bench": "pipelines.reenact.liveportrait.bench",
    "reduced": "pipelines.reenact.liveportrait.config",
}

if TYPE_CHECKING:
    from pipelines.reenact.liveportrait.backend import (
        LivePortraitDriver,
        LivePortraitEdit,
        LivePortraitReenact,
        LivePortraitSettings,
    )
    from pipelines.reenact.liveportrait.bench import bench
    from pipelines.reenact.liveportrait.config import FULL, LivePortraitConfig, reduced
    from pipelines.reenact.liveportrait.models import BACKEND, CHECKPOINTS, LivePortraitModels

__getattr__ = exports(__name__, _EXPORTS)
__all__ = [
    "BACKEND",
    "CHECKPOINTS",
    "FULL",
    "LivePortraitConfig",
    "LivePortraitDriver",
    "LivePortraitEdit",
    "LivePortraitModels",
    "LivePortraitReenact",
    "LivePortraitSettings",
    "bench",
    "reduced",
]
