"""The pipelines' error family: the bases every media, speech, face, lip-sync, reenactment,
QC and model error derives from, so that the application layer
(:mod:`studio.services.errors`) maps the whole package without catching ``ValueError``.

Each subpackage keeps its precise classes next to its code (``pipelines.media.errors``,
``pipelines.qc.errors``, ``ScriptError`` in ``pipelines.speech.script``, …); they derive from
these. ``PipelineInputError`` is also a :class:`ValueError`, and ``ModelMissingError`` a
:class:`FileNotFoundError`, as those classes always were.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: anything the pipelines refuse or cannot do."""


class PipelineInputError(PipelineError, ValueError):
    """An input (media, dub, script, motion, a face in it) the pipelines cannot use."""


class PipelineNotFoundError(PipelineError):
    """A file named as an input does not exist."""


class ModelMissingError(PipelineError, FileNotFoundError):
    """A model file or weight is not installed (nothing is downloaded at run time); the
    message names it and where it was looked for."""
