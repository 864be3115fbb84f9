"""Reenactment: a driving performance re-animates a performer's face (video or still).

``interface`` holds the interface every backend implements (shared with the neural backend);
``model`` the whole-face canonical model; ``motion`` turns an analysed driving video into
pixel-free motion and plans it onto an output's frames (resampling, smoothing, clamping);
``motion_file`` keeps a motion on disk with its driver's identity reference; ``embedded`` is the
CPU backend (a whole-face mesh warp); ``pipeline`` streams a source through a backend.
"""

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
from pipelines.reenact.motion_file import MotionFileError, load_motion, save_motion
from pipelines.reenact.pipeline import (
    ReenactError,
    ReenactJob,
    ReenactResult,
    StillSource,
    run_reenact,
)

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
    "run_reenact",
    "save_motion",
]
