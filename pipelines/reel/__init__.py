"""Reels: from a long video to its shots, dialogue per shot, and the conformed reel (issue 17).

The media building blocks of the reel workflow; the studio's reel job, the consent gate per
character and the deliverables are built on top of them and live in ``studio/``.

- ``shots``: the typed :class:`ShotList` (a partition of the reel's frames into shots, each
  with its record timecode, source in/out and the :class:`Transition` it begins with);
- ``detect``: :func:`detect_shots`, streaming shot detection on PyAV (cuts, dissolves, fades);
- ``evaluate``: :func:`score` a detection against hand-labelled shots;
- ``editlist``: :func:`load_edit_list` (CMX 3600 EDL, OpenTimelineIO) into a ShotList
  checked against the reel's probe;
- ``dialogue``: timed scripts (SRT/WebVTT with speakers, CSV with timecodes) and
  per-character stems, assigned to shots by time;
- ``conform``: :func:`conform_reel`, the full reel from the source and per-shot
  replacements, frame-accurate with the source's timecode.

Every refusal is a :class:`~pipelines.reel.errors.ReelError` (``errors``).
"""

from .conform import (
    INTRA_CODECS,
    ConformMode,
    ConformReport,
    ShotConform,
    conform_reel,
)
from .detect import DetectorSettings, ShotDetector, detect_shots
from .dialogue import (
    CrossingLine,
    DialogueAssignment,
    DialogueLine,
    ShotDialogue,
    ShotLine,
    assign_dialogue,
    lines_by_character,
    load_dialogue,
    stem_lines,
)
from .editlist import MAX_EDIT_LIST_BYTES, load_edit_list
from .errors import (
    ConformError,
    DialogueError,
    EditListError,
    EditListMismatchError,
    ReelError,
    ReelInputError,
    ReelNotFoundError,
    ReplacementMismatchError,
    ShotListError,
)
from .evaluate import DetectionScore, KindScore, score
from .shots import Shot, ShotList, Transition, TransitionKind

__all__ = [
    "INTRA_CODECS",
    "MAX_EDIT_LIST_BYTES",
    "ConformError",
    "ConformMode",
    "ConformReport",
    "CrossingLine",
    "DetectionScore",
    "DetectorSettings",
    "DialogueAssignment",
    "DialogueError",
    "DialogueLine",
    "EditListError",
    "EditListMismatchError",
    "KindScore",
    "ReelError",
    "ReelInputError",
    "ReelNotFoundError",
    "ReplacementMismatchError",
    "Shot",
    "ShotConform",
    "ShotDetector",
    "ShotDialogue",
    "ShotLine",
    "ShotList",
    "ShotListError",
    "Transition",
    "TransitionKind",
    "assign_dialogue",
    "conform_reel",
    "detect_shots",
    "lines_by_character",
    "load_dialogue",
    "load_edit_list",
    "score",
    "stem_lines",
]
