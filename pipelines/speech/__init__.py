"""Speech for dubbing: the translated, timed script (issue 4, item 1).

``script`` parses an SRT or WebVTT dubbing script into exact, validated cues and refuses, with a
reason a person can act on, any script a dub cannot be spoken from. ``dub`` fits a recorded dub
to its shot (length rule, rate, layout, mix, loudness); ``recognition`` finds where it speaks
(silero VAD) and which phones it speaks when (PocketSphinx), the input of lip sync.
"""

from .dub import (
    DEFAULT_TOLERANCE_S,
    SILENCE_DBFS,
    DubError,
    DubLengthError,
    PreparedDub,
    prepare_dub,
)
from .recognition import (
    MAX_DURATION_S,
    DubPhones,
    Phone,
    RecognitionError,
    VoiceSegment,
    detect_voice,
    recognise_phones,
    timed_phones_for_dub,
    voice_probabilities,
)
from .script import (
    MAX_SCRIPT_BYTES,
    Cue,
    CueOutOfRangeError,
    CueTimingError,
    EmptyCueError,
    EmptyScriptError,
    NotASubtitleError,
    OverlappingCuesError,
    Script,
    ScriptEncodingError,
    ScriptError,
    ScriptTooLargeError,
    UnorderedCuesError,
    load_script,
    script_sha256,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MAX_DURATION_S",
    "MAX_SCRIPT_BYTES",
    "SILENCE_DBFS",
    "Cue",
    "CueOutOfRangeError",
    "CueTimingError",
    "DubError",
    "DubLengthError",
    "DubPhones",
    "EmptyCueError",
    "EmptyScriptError",
    "NotASubtitleError",
    "OverlappingCuesError",
    "Phone",
    "PreparedDub",
    "RecognitionError",
    "Script",
    "ScriptEncodingError",
    "ScriptError",
    "ScriptTooLargeError",
    "UnorderedCuesError",
    "VoiceSegment",
    "detect_voice",
    "load_script",
    "prepare_dub",
    "recognise_phones",
    "script_sha256",
    "timed_phones_for_dub",
    "voice_probabilities",
]
