"""Lip-sync: the on-screen mouth follows new dialogue (a recorded dub or a translated script).

``interface`` holds the one interface every backend implements; ``embedded`` is the CPU
backend that needs no model files; ``drive`` turns a dub or a script into per-frame mouth
targets; ``pipeline`` streams a shot through a backend.

Names are imported on first use (``pipelines._lazy``): importing one submodule does not load
the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines._lazy import exports

_EXPORTS = {
    "EmbeddedLipSync": "pipelines.lipsync.embedded",
    "FaceTrackInput": "pipelines.lipsync.interface",
    "FrameEdit": "pipelines.lipsync.interface",
    "LipSyncBackend": "pipelines.lipsync.interface",
    "LipSyncError": "pipelines.lipsync.pipeline",
    "LipSyncJob": "pipelines.lipsync.pipeline",
    "LipSyncResult": "pipelines.lipsync.pipeline",
    "LowerFaceModel": "pipelines.lipsync.model",
    "ScriptDub": "pipelines.lipsync.drive",
    "SpeechDrive": "pipelines.lipsync.interface",
    "TrackChange": "pipelines.edits.guard",
    "drive_from_recording": "pipelines.lipsync.drive",
    "drive_from_script": "pipelines.lipsync.drive",
    "run_lipsync": "pipelines.lipsync.pipeline",
}

if TYPE_CHECKING:
    from pipelines.edits.guard import TrackChange
    from pipelines.lipsync.drive import ScriptDub, drive_from_recording, drive_from_script
    from pipelines.lipsync.embedded import EmbeddedLipSync
    from pipelines.lipsync.interface import FaceTrackInput, FrameEdit, LipSyncBackend, SpeechDrive
    from pipelines.lipsync.model import LowerFaceModel
    from pipelines.lipsync.pipeline import (
        LipSyncError,
        LipSyncJob,
        LipSyncResult,
        run_lipsync,
    )

__getattr__ = exports(__name__, _EXPORTS)
__all__ = [
    "EmbeddedLipSync",
    "FaceTrackInput",
    "FrameEdit",
    "LipSyncBackend",
    "LipSyncError",
    "LipSyncJob",
    "LipSyncResult",
    "LowerFaceModel",
    "ScriptDub",
    "SpeechDrive",
    "TrackChange",
    "drive_from_recording",
    "drive_from_script",
    "run_lipsync",
]
