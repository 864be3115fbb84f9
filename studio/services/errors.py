"""The one translation table: any error of the three families (:mod:`consent.errors`,
:mod:`pipelines.errors`, :mod:`studio.errors`) → exit code, HTTP status and message.

The CLI exits with ``exit_code`` and prints ``message`` (or ``{"ok": false, "error": kind,
"message": …}`` with ``--json``); the studio UI shows ``message`` (Gradio reports an event's
error in-band, as a ``gr.Error``); the job pool records ``message`` as the job's error.
``http_status`` is what an HTTP front end answers for it; none of the studio's routes answers
one yet (the sign-in route's 401 is Gradio's own login). Exit codes (README,
"A tour of the consent desk"): 0 success or allow, 1 deny, cancel or failed verification,
2 usage error, 3 input rejected, 4 not found, 5 conflict.

Rows are tried in order and the first class the error is an instance of wins, so the more
specific classes come first. An error in no row is a bug: :func:`translate` returns ``None``
and the front end reports an internal error (logged with its traceback), never a message
that would read as a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from consent.errors import ConsentError, DuplicateError, NotFoundError
from consent.merkle import MerkleError
from consent.note import NoteError
from pipelines.errors import ModelMissingError, PipelineError, PipelineNotFoundError
from studio.accounts.service import AccessDenied
from studio.errors import (
    EXIT_CONFLICT,
    EXIT_DENY,
    EXIT_NOT_FOUND,
    EXIT_REJECTED,
    EXIT_USAGE,
    ConsentRefused,
    InputChangedError,
    InputNotFoundError,
    JobStateError,
    OutputExistsError,
    ReelHeldError,
    RenderCancelled,
    RenderChangedError,
    RenderDenied,
    ReviewTamperedError,
    SelectionError,
    StudioError,
    UsageError,
)


@dataclass(frozen=True)
class Translation:
    """What a front end says about one error."""

    exit_code: int
    http_status: int
    kind: str  # the stable machine-readable code (``error`` in JSON output)
    message: str


#: (error class, exit code, HTTP status), most specific first.
TABLE: Final[tuple[tuple[type[BaseException], int, int], ...]] = (
    # verdicts: the gate said no, or the operator stopped it
    (RenderDenied, EXIT_DENY, 403),
    (RenderCancelled, EXIT_DENY, 409),
    # a reel version held back: a shot rejected in review, approval still awaited, or the
    # review records differ from the ledger's (tampering)
    (ReviewTamperedError, EXIT_DENY, 409),
    (ReelHeldError, EXIT_DENY, 409),
    # a shot with no consented face: input rejected, the refusal ledgered
    (ConsentRefused, EXIT_REJECTED, 422),
    (AccessDenied, EXIT_DENY, 403),
    # usage
    (SelectionError, EXIT_USAGE, 400),
    (UsageError, EXIT_USAGE, 400),
    # not found
    (InputNotFoundError, EXIT_NOT_FOUND, 404),
    (NotFoundError, EXIT_NOT_FOUND, 404),
    (PipelineNotFoundError, EXIT_NOT_FOUND, 404),
    # conflicts: never overwritten, never imported twice
    (OutputExistsError, EXIT_CONFLICT, 409),
    (DuplicateError, EXIT_CONFLICT, 409),
    # a review decision on a render the reviewer did not see (rendered again meanwhile)
    (RenderChangedError, EXIT_CONFLICT, 409),
    # a file written to while verify read it: the report would mix two contents
    (InputChangedError, EXIT_CONFLICT, 409),
    (JobStateError, EXIT_CONFLICT, 409),
    # rejected input: malformed, forged, expired, unusable, not media
    (ValidationError, EXIT_REJECTED, 422),
    (ConsentError, EXIT_REJECTED, 422),
    (MerkleError, EXIT_REJECTED, 422),
    (NoteError, EXIT_REJECTED, 422),
    # a model file that is not installed: the message names it and its folder
    (ModelMissingError, EXIT_REJECTED, 503),
    (PipelineError, EXIT_REJECTED, 422),
    (StudioError, EXIT_REJECTED, 422),
    # unreadable input files; an optional backend's package that is not installed
    (OSError, EXIT_REJECTED, 422),
    (ImportError, EXIT_REJECTED, 503),
)


def _kind(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, ValidationError):
        return "bad_request"
    return type(exc).__name__


def message_of(exc: BaseException) -> str:
    """The error's message as a person reads it."""
    if isinstance(exc, ValidationError):
        from consent.documents import format_validation_error

        return format_validation_error("request", exc)
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else str(exc)


def translate(exc: BaseException) -> Translation | None:
    """The row for ``exc``; ``None`` when no family claims it (a bug, not bad input)."""
    for cls, exit_code, status in TABLE:
        if isinstance(exc, cls):
            return Translation(exit_code, status, _kind(exc), message_of(exc))
    return None


#: What a front end says for an error no family claims (logged there with its traceback).
def internal(exc: BaseException) -> Translation:
    return Translation(EXIT_REJECTED, 500, "internal",
                       f"internal error ({type(exc).__name__}); see the studio log")
