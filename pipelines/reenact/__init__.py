"""Reenactment: a driving performance re-animates a performer's face (video or still).

``interface`` holds the interface every backend implements (shared with the neural backend);
``model`` the whole-face canonical model; ``motion`` turns an analysed driving video into
pixel-free motion and plans it onto an output's frames (resampling, smoothing, clamping);
``motion_file`` keeps a motion on disk with its driver's identity reference; ``embedded`` is the
CPU backend (a whole-face mesh warp); ``pipeline`` streams a source through a backend.

Names are imported on first use (``pipelines._lazy``): importing one submodule does not load
the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines._lazy import exports

_EXPORTS = {
    "ClampReport": "pipelines.reenact.interface",
    "DriverIdentity": "pipelines.reenact.motion",
    "EmbeddedReenact": "pipelines.reenact.embedded",
    "FaceModel": "pipelines.reenact.model",
    "Features": "pipelines.reenact.model",
    "FrameEdit": "pipelines.reenact.interface",
    "Motion": "pipelines.reenact.motion",
    "MotionDrive": "pipelines.reenact.interface",
    "MotionError": "pipelines.reenact.motion",
    "MotionFile": "pipelines.reenact.motion_file",
    "MotionFileError": "pipelines.reenact.motion_file",
    "REGIONS": "pipelines.reenact.model",
    "ReenactBackend": "pipelines.reenact.interface",
    "ReenactError": "pipelines.reenact.pipeline",
    "ReenactJob": "pipelines.reenact.pipeline",
    "ReenactOptions": "pipelines.reenact.interface",
    "ReenactResult": "pipelines.reenact.pipeline",
    "SourceFace": "pipelines.reenact.interface",
    "StillSource": "pipelines.reenact.pipeline",
    "extract_motion": "pipelines.reenact.motion",
    "load_motion": "pipelines.reenact.motion_file",
    "plan_drive": "pipelines.reenact.motion",
    "read_motion_file": "pipelines.reenact.motion_file",
    "run_reenact": "pipelines.reenact.pipeline",
    "save_motion": "pipelines.reenact.motion_file",
}

if TYPE_CHECKING:
    from pipelines.reenact.embedded import EmbeddedReenact
    from pipelines.reenact.interface import (
        ClampReport,
        FrameEdit,
        MotionDrive,
        ReenactBackend,
        ReenactOptions,
        SourceFace,
    )
    from pipelines.reenact.model import REGIONS, FaceModel, Features
    from pipelines.reenact.motion import (
        DriverIdentity,
        Motion,
        MotionError,
        extract_motion,
        plan_drive,
    )
    from pipelines.reenact.motion_file import (
        MotionFile,
        MotionFileError,
        load_motion,
        read_motion_file,
        save_motion,
    )
    from pipelines.reenact.pipeline import (
        ReenactError,
        ReenactJob,
        ReenactResult,
        StillSource,
        run_reenact,
    )

__getattr__ = exports(__name__, _EXPORTS)
__all__ = [
    "REGIONS",
    "ClampReport",
    "DriverIdentity",
    "EmbeddedReenact",
    "FaceModel",
    "Features",
    "FrameEdit",
    "Motion",
    "MotionDrive",
    "MotionError",
    "MotionFile",
    "MotionFileError",
    "ReenactBackend",
    "ReenactError",
    "ReenactJob",
    "ReenactOptions",
    "ReenactResult",
    "SourceFace",
    "StillSource",
    "extract_motion",
    "load_motion",
    "plan_drive",
    "read_motion_file",
    "run_reenact",
    "save_motion",
]
