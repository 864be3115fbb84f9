"""Dense face landmarks from mediapipe's legacy face mesh (478 points per face).

Why mediapipe 0.10.14's ``solutions.face_mesh``: its detector and landmark models ship inside
the wheel (nothing downloads), it runs at a few milliseconds per frame on a CPU, and its
tracking mode reuses the previous frame's landmarks as the next region of interest, which keeps
the mesh steady over a shot. ``refine_landmarks=True`` adds the attention model's lips/eyes
refinement and ten iris points (468–477), which eye-opening and alignment use.

Coordinates are converted to *pixels* once, here: x·W, y·H, and z·W (mediapipe's z is relative
depth on roughly the scale of x, origin near the head centre, smaller = closer to the camera).
Everything downstream therefore measures in the frame's own pixel units.

Mesh indices this package relies on (mediapipe's canonical mesh numbering; "right" and "left"
are the *subject's*, so the subject's right eye is on the image's left in unmirrored footage):

==========================  =======================================================
eye corners                 right eye outer 33, inner 133; left eye outer 263, inner 362
eyelids (EAR pairs)         right: 160–144, 158–153; left: 385–380, 387–373
iris centres (refine only)  right 468, left 473
lips, inner contour         upper 13, lower 14; inner corners 78 (right), 308 (left)
lips, outer contour         upper 0, lower 17; mouth corners 61 (right), 291 (left)
nose                        tip 1, bottom of the nose (subnasale) 2
chin / forehead             chin 152, top of the forehead 10
==========================  =======================================================
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import numpy as np
from mediapipe.python.solution_base import SolutionBase  # type: ignore[import-untyped]
from mediapipe.python.solutions import face_mesh as _mp_face_mesh  # type: ignore[import-untyped]
from numpy.typing import NDArray

NUM_LANDMARKS: Final = 478

# Subject's right eye (image left when the footage is not mirrored).
RIGHT_EYE_OUTER: Final = 33
RIGHT_EYE_INNER: Final = 133
RIGHT_EYE_LIDS: Final = ((160, 144), (158, 153))
RIGHT_IRIS: Final = 468
# Subject's left eye.
LEFT_EYE_OUTER: Final = 263
LEFT_EYE_INNER: Final = 362
LEFT_EYE_LIDS: Final = ((385, 380), (387, 373))
LEFT_IRIS: Final = 473
# Lips.
LIPS_INNER_UPPER: Final = 13
LIPS_INNER_LOWER: Final = 14
LIPS_INNER_RIGHT: Final = 78
LIPS_INNER_LEFT: Final = 308
LIPS_OUTER_UPPER: Final = 0
LIPS_OUTER_LOWER: Final = 17
MOUTH_RIGHT: Final = 61
MOUTH_LEFT: Final = 291
# Nose, chin, forehead.
NOSE_TIP: Final = 1
NOSE_BOTTOM: Final = 2
CHIN: Final = 152
FOREHEAD: Final = 10

BBox = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels, x1/y1 exclusive-ish (float), clipped to the frame."""

RGBImage = NDArray[np.uint8]
"""An RGB uint8 H×W×3 frame, as this package returns them."""
ImageArray = NDArray[Any]
"""What the entry points accept: any array, checked at run time by :func:`ensure_rgb` (so
callers holding an array typed loosely by cv2 or PyAV need no cast)."""
Landmarks = NDArray[np.float32]


@dataclass(frozen=True, eq=False, slots=True)
class FaceObservation:
    """One face in one frame.

    ``landmarks`` is (478, 3) float32 in pixel units (see the module docstring). ``bbox`` is
    the extent of the mesh clipped to the frame; landmarks themselves are *not* clipped (a face
    leaving the frame keeps a plausible mesh). ``score`` is the face detector's confidence for
    this face: measured on frames where mediapipe ran its detector, carried over from the
    previous frame while it only tracked (every face reported has also passed mediapipe's
    landmark presence threshold). ``image_size`` is (width, height) of the frame, which head
    pose needs for its camera model.
    """

    bbox: BBox
    landmarks: Landmarks
    score: float
    image_size: tuple[int, int] = (0, 0)

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2.0, (self.bbox[1] + self.bbox[3]) / 2.0)


def ensure_rgb(image: object) -> RGBImage:
    """Check that ``image`` is an RGB uint8 H×W×3 array and return it C-contiguous.

    Every entry point calls this so that a wrong input (BGR float, grey, RGBA) fails with a
    message instead of a native crash or silently wrong landmarks. mediapipe and dlib both
    require C-contiguous memory, and a PyAV frame or a slice may not be.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB pixels, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


_MUTE_LOCK = threading.Lock()
_QUIET_FACE_FRAMES = 12


@contextlib.contextmanager
def _native_chatter_muted() -> Iterator[None]:
    """Silence file descriptor 2 while mediapipe's C++ graph starts.

    Its TF Lite delegates and absl print setup notices straight to fd 2 before any log level
    applies ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires …"); an
    operator's terminal should show the studio's own messages. The window is the graph's
    start only; ``STUDIO_NATIVE_LOGS=1`` keeps everything.
    """
    if os.environ.get("STUDIO_NATIVE_LOGS") == "1":
        yield
        return
    with _MUTE_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceMeshDetector:
    """mediapipe FaceMesh with refined landmarks, returning :class:`FaceObservation` lists.

    ``static=True`` runs the face detector on every image (for unrelated stills);
    ``static=False`` tracks: the detector runs only while fewer than ``max_faces`` faces are
    being tracked, and landmarks of frame *n* seed the search in frame *n+1*. Call
    :meth:`reset` at a shot cut so the graph forgets the previous shot.

    Not thread-safe: one instance per stream. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        static: bool = False,
        max_faces: int = 4,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        self.static = static
        self.max_faces = max_faces
        self._default_score = float(min_detection_confidence)
        # The public FaceMesh class exposes only the landmarks; the same graph also emits the
        # detector's output, whose scores we want, so build the solution with both outputs.
        with _native_chatter_muted():
            self._solution = SolutionBase(
                binary_graph_path=_mp_face_mesh._BINARYPB_FILE_PATH,
                side_inputs={
                    "num_faces": max_faces,
                    "with_attention": True,
                    "use_prev_landmarks": not static,
                },
                calculator_params={
                    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                    "facelandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence,
                },
                outputs=["multi_face_landmarks", "face_detections"],
            )
        self._previous: list[tuple[BBox, float]] = []
        self._quiet_frames = _QUIET_FACE_FRAMES

    def detect(self, rgb: ImageArray) -> list[FaceObservation]:
        """Faces in one RGB uint8 frame, ordered left to right."""
        image = ensure_rgb(rgb)
        h, w = image.shape[:2]
        if self._quiet_frames <= 0:
            result = self._solution.process({"image": image})
        else:
            # The detector's and (at the first faces, detected then tracked) the landmark
            # models' interpreters start lazily and announce themselves: mute until all ran.
            with _native_chatter_muted():
                result = self._solution.process({"image": image})
            if result.multi_face_landmarks:
                self._quiet_frames -= 1
        faces = result.multi_face_landmarks or []
        detections = _detection_boxes(result.face_detections, w, h)
        observations: list[FaceObservation] = []
        for face in faces:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            if pts.shape[0] != NUM_LANDMARKS:  # pragma: no cover - refine is always on
                continue
            pts *= np.array([w, h, w], dtype=np.float32)
            bbox = (
                float(np.clip(pts[:, 0].min(), 0, w)),
                float(np.clip(pts[:, 1].min(), 0, h)),
                float(np.clip(pts[:, 0].max(), 0, w)),
                float(np.clip(pts[:, 1].max(), 0, h)),
            )
            if bbox[2] - bbox[0] < 1.0 or bbox[3] - bbox[1] < 1.0:
                continue  # the mesh lies wholly outside the frame
            observations.append(
                FaceObservation(bbox, pts, self._score(bbox, detections), (w, h))
            )
        observations.sort(key=lambda o: o.bbox[0])
        self._previous = [(o.bbox, o.score) for o in observations]
        return observations

    def _score(self, bbox: BBox, detections: list[tuple[BBox, float]]) -> float:
        """Detector score for a mesh box: this frame's detection whose centre lies inside the
        box, else the score of the previous frame's face that overlaps it most."""
        best = None
        for dbox, score in detections:
            cx, cy = (dbox[0] + dbox[2]) / 2, (dbox[1] + dbox[3]) / 2
            if bbox[0] <= cx <= bbox[2] and bbox[1] <= cy <= bbox[3] and (
                best is None or score > best
            ):
                best = score
        if best is not None:
            return best
        overlaps = [(iou(bbox, pbox), score) for pbox, score in self._previous]
        overlaps = [o for o in overlaps if o[0] > 0.3]
        return max(overlaps)[1] if overlaps else self._default_score

    def reset(self) -> None:
        """Forget the tracked faces (call at a shot cut)."""
        self._solution.reset()
        self._previous = []

    def close(self) -> None:
        # Closing waits for the graph's threads, some of which still owe their start-up notice.
        with _native_chatter_muted():
            self._solution.close()

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _detection_boxes(detections: Any, w: int, h: int) -> list[tuple[BBox, float]]:
    boxes: list[tuple[BBox, float]] = []
    for det in detections or []:
        rb = det.location_data.relative_bounding_box
        score = float(det.score[0]) if len(det.score) else 0.0
        x0, y0 = rb.xmin * w, rb.ymin * h
        boxes.append(((x0, y0, x0 + rb.width * w, y0 + rb.height * h), score))
    return boxes
