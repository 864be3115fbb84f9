"""Speech for dubbing: the translated, timed script (issue 4, item 1).

``script`` parses an SRT or WebVTT dubbing script into exact, validated cues and refuses, with a
reason a person can act on, any script a dub cannot be spoken from.
"""

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
    "MAX_SCRIPT_BYTES",
    "Cue",
    "CueOutOfRangeError",
    "CueTimingError",
    "EmptyCueError",
    "EmptyScriptError",
    "NotASubtitleError",
    "OverlappingCuesError",
    "Script",
    "ScriptEncodingError",
    "ScriptError",
    "ScriptTooLargeError",
    "UnorderedCuesError",
    "load_script",
    "script_sha256",
]
