"""Exceptions of the QC package, by family."""

from __future__ import annotations

from pipelines.errors import (
    ModelMissingError,
    PipelineError,
    PipelineInputError,
    PipelineNotFoundError,
)


class QCError(PipelineError):
    """Base of every QC failure."""


class QCInputError(QCError, PipelineInputError):
    """An input QC cannot measure: unreadable media, no face, mismatched timing (CLI exit 3)."""


class QCModelMissingError(QCError, ModelMissingError):
    """dlib's 68-point predictor is not installed (nothing is downloaded at run time)."""


class QCNotFoundError(QCInputError, PipelineNotFoundError, FileNotFoundError):
    """A file named for QC does not exist (CLI exit 4)."""
