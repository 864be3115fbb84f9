"""Faces: dense landmarks, geometry, identity embeddings and tracking (no policy here).

Detection and tracking use mediapipe 0.10.14's 478-point face mesh; identity embeddings come
from dlib's ResNet (weights inside the ``face-recognition-models`` wheel) or from an operator's
local insightface ArcFace ONNX. Nothing here downloads, and nothing here knows about consent:
the studio decides what the tracks found here may be used for.
"""

from pipelines.faces.embedding import (
    DlibEmbedder,
    FaceEmbedder,
    InsightFaceEmbedder,
    MissingDependencyError,
    ModelFileMissingError,
)
from pipelines.faces.geometry import (
    EyeOpening,
    HeadPose,
    eye_opening,
    face_sharpness,
    head_pose,
    inter_ocular_distance,
    is_frontal,
    mouth_opening,
    observation_pose,
)
from pipelines.faces.landmarks import FaceMeshDetector, FaceObservation
from pipelines.faces.scan import ScanResult, faces_in_image, scan_video
from pipelines.faces.tracking import FaceTracker, ShotCutDetector, Track, TrackSample

__all__ = [
    "DlibEmbedder",
    "EyeOpening",
    "FaceEmbedder",
    "FaceMeshDetector",
    "FaceObservation",
    "FaceTracker",
    "HeadPose",
    "InsightFaceEmbedder",
    "MissingDependencyError",
    "ModelFileMissingError",
    "ScanResult",
    "ShotCutDetector",
    "Track",
    "TrackSample",
    "eye_opening",
    "face_sharpness",
    "faces_in_image",
    "head_pose",
    "inter_ocular_distance",
    "is_frontal",
    "mouth_opening",
    "observation_pose",
    "scan_video",
]
