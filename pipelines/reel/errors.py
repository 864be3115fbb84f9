"""Exceptions of the reel package, by family.

Every refusal is a :class:`ReelError` (a ``ValueError``) whose message says what was found
where and what to do. The CLI maps :class:`ReelInputError` to exit 3 and
:class:`ReelNotFoundError` to exit 4, like the QC package.
"""

from __future__ import annotations


class ReelError(ValueError):
    """Base of every reel failure."""


class ReelInputError(ReelError):
    """An input the reel tools cannot use (CLI exit 3)."""


class ReelNotFoundError(ReelInputError, FileNotFoundError):
    """A file named for a reel operation does not exist (CLI exit 4)."""


# --------------------------------------------------------------------------- shot lists


class ShotListError(ReelInputError):
    """A shot list that is not a partition of the reel's frames (gaps, overlaps, order)."""


class EditListError(ReelInputError):
    """An edit list (CMX 3600 EDL, OpenTimelineIO) that cannot be read or used."""


class EditListMismatchError(EditListError):
    """A readable edit list that does not describe this reel (rate, frame count, timecode)."""


# --------------------------------------------------------------------------- dialogue


class DialogueError(ReelInputError):
    """A timed script or dialogue stem that cannot be assigned to the reel's shots."""


# --------------------------------------------------------------------------- conform


class ConformError(ReelInputError):
    """The reel cannot be conformed from these shots and replacements."""


class ReplacementMismatchError(ConformError):
    """A replacement does not match its shot (frame count, frame size or frame rate)."""
