"""Lip-sync: the on-screen mouth follows new dialogue (a recorded dub or a translated script).

``interface`` holds the one interface every backend implements; ``embedded`` is the CPU
backend that needs no model files; ``drive`` turns a dub or a script into per-frame mouth
targets; ``pipeline`` streams a shot through a backend.
"""

from pipelines.lipsync.drive import ScriptDub, drive_from_recording, drive_from_script
from pipelines.lipsync.embedded import EmbeddedLipSync
from pipelines.lipsync.interface import FaceTrackInput, FrameEdit, LipSyncBackend, SpeechDrive
from pipelines.lipsync.model import LowerFaceModel
from pipelines.lipsync.pipeline import (
    LipSyncError,
    LipSyncJob,
    LipSyncResult,
    TrackChange,
    run_lipsync,
)

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
