"""Identity embeddings: one small interface, two backends.

The consent gate must tell performer A from performer B; it does so by comparing embeddings
of tracked faces with enrolled templates. :class:`DlibEmbedder` is the embedded default (its
weights ship in the ``face-recognition-models`` wheel, public domain); :class:`InsightFaceEmbedder`
loads an operator's ArcFace ONNX from a local folder and records that folder's licence, because
insightface's own model packs are non-commercial unless licensed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import cv2
import dlib  # type: ignore[import-untyped]
import numpy as np
from numpy.typing import NDArray

from pipelines.errors import ModelMissingError, PipelineError
from pipelines.faces.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_TIP,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    FaceObservation,
    ImageArray,
    RGBImage,
    ensure_rgb,
)

Embedding = NDArray[np.float32]


@runtime_checkable
class FaceEmbedder(Protocol):
    """Turns one face of one frame into a fixed-length identity vector.

    ``match_threshold`` is the backend's same-person distance limit: two embeddings closer than
    that are taken to be one person (tracking re-identification uses it; the gate calibrates
    its own). ``licence`` is what the model registry and the gate check before a commercial
    render may use the backend.
    """

    @property
    def name(self) -> str: ...

    @property
    def licence(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def match_threshold(self) -> float: ...

    def embed(self, rgb: ImageArray, observation: FaceObservation) -> Embedding: ...

    def distance(self, a: Embedding, b: Embedding) -> float: ...


class ModelFileMissingError(ModelMissingError):
    """A weights file the backend needs is not where it should be (nothing is downloaded)."""


class MissingDependencyError(PipelineError, ImportError):
    """An optional package a backend needs is not installed."""


def face_recognition_models_dir() -> Path:
    """Folder of the ``face-recognition-models`` weights, found without importing the package.

    Its ``__init__`` imports ``pkg_resources``, which modern setuptools no longer provides, and
    ``importlib.resources.files`` would run that ``__init__``; ``find_spec`` on a top-level
    package only locates it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the dlib embedder needs the 'face-recognition-models' package "
            "(pip install face-recognition-models==0.3.0)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ModelFileMissingError(
            f"model file {path.name!r} not found in {path.parent}; nothing is downloaded: "
            f"put the file there"
        )
    return path


def _as_vector(values: Any, dim: int) -> Embedding:
    vec = np.asarray(values, dtype=np.float32).reshape(-1)
    if vec.shape != (dim,):
        raise ValueError(f"expected a ({dim},) embedding, got shape {vec.shape}")
    return vec


class DlibEmbedder:
    """dlib's 128-d ResNet (``dlib_face_recognition_resnet_model_v1``), Euclidean distance.

    Alignment: dlib's own 5-point shape predictor (eye corners and the bottom of the nose) run
    inside the mesh's bounding box, then dlib's 150×150 face chip (padding 0.25), exactly the
    input the ResNet was trained on. Measured on the six GRID clips (8 frames each), this lands
    within 0.04–0.06 of dlib's reference pipeline (HOG detector + 5-point predictor), closer
    than building the 5 points from mesh landmarks (0.04–0.09). The 68-point predictor is *not*
    used: it was trained on iBUG 300-W, whose licence excludes commercial use.

    Distances on GRID: the same speaker across frames ≤ 0.31 (mean ≈ 0.19); different speakers
    ≥ 0.57 (two long-haired young women come closest). dlib's customary threshold of 0.6 is
    therefore *not* safe on this material; ``match_threshold`` is 0.45.
    """

    name: Final = "dlib-resnet-v1"
    licence: Final = (
        "CC0-1.0 (dlib-models by Davis King, public domain; packaged in face-recognition-models, "
        "MIT)"
    )
    dim: Final = 128
    match_threshold: Final = 0.45

    def __init__(self, models_dir: Path | str | None = None, *, num_jitters: int = 0) -> None:
        folder = Path(models_dir) if models_dir is not None else face_recognition_models_dir()
        self._predictor = dlib.shape_predictor(
            str(_require(folder / "shape_predictor_5_face_landmarks.dat"))
        )
        self._net = dlib.face_recognition_model_v1(
            str(_require(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        )
        self._num_jitters = num_jitters

    def embed(self, rgb: ImageArray, observation: FaceObservation) -> Embedding:
        image = ensure_rgb(rgb)
        x0, y0, x1, y1 = observation.bbox
        rect = dlib.rectangle(
            math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)
        )
        shape = self._predictor(image, rect)
        return _as_vector(
            self._net.compute_face_descriptor(image, shape, self._num_jitters), self.dim
        )

    def distance(self, a: Embedding, b: Embedding) -> float:
        return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


# ArcFace's 5-point template for a 112×112 crop (insightface's ``arcface_dst``): the subject's
# right eye (image left), left eye, nose tip, right and left mouth corners.
ARCFACE_TEMPLATE: Final = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
LICENCE_FILES: Final = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "licence.txt",
                        "license.txt")
UNKNOWN_LICENCE: Final = "unknown — not cleared for commercial use"


def five_points(observation: FaceObservation) -> NDArray[np.float32]:
    """The five ArcFace alignment points from the mesh: eye centres (mean of each eye's
    corners, steadier than the irises, which follow gaze), nose tip, mouth corners."""
    lm = observation.landmarks[:, :2]
    return np.stack(
        [
            (lm[RIGHT_EYE_OUTER] + lm[RIGHT_EYE_INNER]) / 2,
            (lm[LEFT_EYE_OUTER] + lm[LEFT_EYE_INNER]) / 2,
            lm[NOSE_TIP],
            lm[MOUTH_RIGHT],
            lm[MOUTH_LEFT],
        ]
    ).astype(np.float32)


def similarity_transform(src: NDArray[np.float32], dst: NDArray[np.float32]) -> NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, shift) taking ``src`` onto ``dst``,
    as a 2×3 matrix (Umeyama 1991), the estimate insightface's own alignment uses."""
    src64, dst64 = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src64.mean(axis=0), dst64.mean(axis=0)
    s_c, d_c = src64 - mu_s, dst64 - mu_d
    cov = d_c.T @ s_c / len(src64)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    var = float((s_c**2).sum() / len(src64))
    if var <= 0:
        raise ValueError("could not align the face (degenerate landmarks)")
    scale = float(np.trace(np.diag(sig) @ fix)) / var
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def arcface_matrix(observation: FaceObservation, size: int = 112) -> NDArray[np.float64]:
    """The 2×3 warp from frame pixels onto ArcFace's template at ``size``×``size``."""
    return similarity_transform(five_points(observation), ARCFACE_TEMPLATE * (size / 112.0))


def align_arcface(rgb: ImageArray, observation: FaceObservation, size: int = 112) -> RGBImage:
    """Similarity-warp the face onto ArcFace's 5-point template (``size``×``size`` RGB)."""
    image = ensure_rgb(rgb)
    matrix = arcface_matrix(observation, size)
    return np.asarray(
        cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                       borderValue=(0, 0, 0)),
        dtype=np.uint8,
    )


def read_licence(folder: Path) -> str:
    """First non-empty line of the folder's licence file, else :data:`UNKNOWN_LICENCE`."""
    for name in LICENCE_FILES:
        path = folder / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip()
    return UNKNOWN_LICENCE


class InsightFaceEmbedder:
    """insightface ArcFace (e.g. ``w600k_r50.onnx`` of the buffalo_l pack) from a local folder.

    Input: the 112×112 RGB crop aligned on the 5-point template, scaled as
    (pixel − ``input_mean``) / ``input_std`` (127.5/127.5 for the buffalo_l and antelopev2
    recognisers); output L2-normalised; cosine distance (1 − cos). The licence is the first line
    of the folder's ``LICENSE``/``licence.txt``; without one it is "unknown — not cleared for
    commercial use", and the gate refuses commercial renders with it.

    ``match_threshold`` (0.6, i.e. cosine similarity 0.4) is insightface's customary verification
    level; it has not been measured here (no weights on this machine): calibrate it on footage.
    """

    name: Final = "insightface-arcface"
    match_threshold: Final = 0.6

    def __init__(
        self,
        model_dir: Path | str,
        *,
        model_file: str = "w600k_r50.onnx",
        input_mean: float = 127.5,
        input_std: float = 127.5,
        providers: list[str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.model_path = self.model_dir / model_file
        if not self.model_path.is_file():
            raise ModelFileMissingError(
                f"ArcFace model file {model_file!r} not found in {self.model_dir}; nothing is "
                f"downloaded: copy the ONNX file (e.g. from insightface's buffalo_l pack) there"
            )
        self.licence = read_licence(self.model_dir)
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise MissingDependencyError(
                "InsightFaceEmbedder needs onnxruntime: pip install onnxruntime "
                "(or onnxruntime-gpu)"
            ) from exc
        self._session = ort.InferenceSession(
            str(self.model_path), providers=providers or ["CPUExecutionProvider"]
        )
        inputs = self._session.get_inputs()
        self._input_name: str = inputs[0].name
        shape = inputs[0].shape
        self.input_size = int(shape[2]) if isinstance(shape[2], int) else 112
        out_shape = self._session.get_outputs()[0].shape
        self.dim = int(out_shape[-1]) if isinstance(out_shape[-1], int) else 512
        self._mean = float(input_mean)
        self._std = float(input_std)

    def embed(self, rgb: ImageArray, observation: FaceObservation) -> Embedding:
        crop = align_arcface(rgb, observation, self.input_size).astype(np.float32)
        blob = ((crop - self._mean) / self._std).transpose(2, 0, 1)[None]
        out = self._session.run(None, {self._input_name: np.ascontiguousarray(blob)})[0]
        vec = _as_vector(out, self.dim)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def distance(self, a: Embedding, b: Embedding) -> float:
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        denom = float(np.linalg.norm(a64) * np.linalg.norm(b64))
        return 1.0 - float(a64 @ b64) / denom if denom > 0 else 1.0
