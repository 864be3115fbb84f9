"""The studio's error family: every way a studio operation (not the registry, not the media
layer) refuses, grouped by what the person asking can do about it.

The registry's family is :mod:`consent.errors`, the media and model layer's
:mod:`pipelines.errors`; :mod:`studio.services.errors` is the one table that turns any of them
into an exit code, an HTTP status and a message. Every class carries a stable ``code`` (the
``error`` field of ``--json`` output).

Request errors subclass :class:`ValueError` as well, as they always have: callers that predate
this module catch them so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the gate's types; imported lazily (CLI start-up)
    from consent.gate import Decision, IdentityMatch
    from studio.render.events import Stage

#: Exit codes of the ``studio`` command, by what the error means (which error gets which:
#: the table in :mod:`studio.services.errors`). Here, not there, because the CLI needs them
#: at start-up and that table imports every error family (SQLAlchemy, pydantic).
EXIT_OK, EXIT_DENY, EXIT_USAGE, EXIT_REJECTED, EXIT_NOT_FOUND, EXIT_CONFLICT = 0, 1, 2, 3, 4, 5


class StudioError(Exception):
    """Base class: anything the studio refuses or cannot do."""

    code = "studio.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------- usage

class UsageError(StudioError, ValueError):
    """The command or form was filled in wrongly (options that exclude each other)."""

    code = "usage"


class SettingsError(UsageError):
    """An environment setting the studio cannot use; the CLI reports it as a usage error."""

    code = "settings"


# ---------------------------------------------------------------------------- requests

class RequestError(StudioError, ValueError):
    """The request is incomplete or unsafe; nothing was run."""

    code = "bad_request"


class InputNotFoundError(RequestError):
    """An input file (shot, dub, stem, script, driver, motion) is not there (CLI exit 4)."""

    code = "not_found"


class SelectionError(RequestError):
    """The request picks a face (``--track``, ``--speaker``, a UI choice) that is unknown or
    that the render may not edit: a usage error (CLI exit 2), said before any work."""

    code = "bad_selection"


class OutputExistsError(RequestError):
    """The output name (or a file the command would write) is taken: never overwritten
    (a conflict, CLI exit 5)."""

    code = "exists"


class NoConsentedFaceError(RequestError):
    """No face of the shot matches a performer with consent, so the gate cannot be asked
    about anyone. The application layer ledgers this as a refusal
    (:class:`ConsentRefused`)."""

    code = "no_consented_face"

    def __init__(self, message: str, tracks: tuple[str, ...] = (),
                 matches: tuple[IdentityMatch, ...] = ()) -> None:
        super().__init__(message)
        self.tracks = tracks  # every face track of the shot
        self.matches = matches  # their identity verdicts (none names a performer)


class BackendError(RequestError):
    """A backend that is unknown, not for this operation, or unusable as configured."""

    code = "backend"


class UploadError(RequestError):
    """An upload was refused; the message says why in words a person can act on."""

    code = "upload"


class InputRejectedError(RequestError):
    """Media, a dub, a script or a reference the pipelines' own checks refuse (said with the
    pipeline's message)."""

    code = "bad_input"


# ---------------------------------------------------------------------------- outcomes

class RenderDenied(StudioError):
    """The consent gate denied the render (at step 3 or at the re-check); nothing published."""

    code = "denied"

    def __init__(self, decision: Decision, stage: Stage) -> None:
        self.decision = decision
        self.stage = stage
        reasons = "; ".join(decision.reasons) or "denied"
        super().__init__(f"consent denied at {stage} (decision {decision.decision_id}): "
                         f"{reasons}")


class ConsentRefused(StudioError):
    """A refusal without a gate verdict on anyone (no face matches a performer with consent),
    recorded in the ledger as a deny decision; ``decision`` is that record."""

    code = "no_consented_face"

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


class RenderCancelled(StudioError):
    """The operator cancelled; nothing was published."""

    code = "cancelled"


class JobStateError(StudioError):
    """A job is not in a state that allows this (cancel a finished job)."""

    code = "job_state"


# ---------------------------------------------------------------------------- render workers


class RenderWorkerError(StudioError, ConnectionError):
    """A render task's worker was lost (killed, node gone) more often than it is retried, or
    the cluster cannot be reached (``studio.executors``), or what a render reads or wrote in
    its shared staging folder changed there: nothing was published."""

    code = "render_worker"


# ---------------------------------------------------------------------------- reels


class ReelNotFoundError(InputNotFoundError):
    """No reel with that id in the studio's database (CLI exit 4)."""

    code = "reel_not_found"


class ReelInputError(InputRejectedError):
    """A reel, edit list, cast or dialogue the reel job cannot use (CLI exit 3); the
    pipelines' :class:`pipelines.reel.ReelError` arrives as this."""

    code = "reel_input"


class ReelHeldError(StudioError):
    """A reel's language version may not be delivered yet: a shot is rejected or not yet
    reviewed, or a deliverable awaits (or lacks) the performer's approval (CLI exit 1)."""

    code = "reel_held"


class ShotRejectedError(ReelHeldError):
    """A shot of the reel is rejected in review (its current render): nothing is delivered
    until it is rendered again or approved."""

    code = "shot_rejected"

    def __init__(self, message: str, shots: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.shots = shots


class ReviewTamperedError(ReelHeldError):
    """The reel's review decisions in the database differ from the ones the ledger holds (a
    row deleted, edited or inserted directly, or a leaf that no signed checkpoint covers):
    nothing is released (CLI exit 1). Restore the database; the ledger names the decisions."""

    code = "review_tampered"


class RenderChangedError(JobStateError):
    """A review decision names a render that is not the shot's current one (the shot was
    rendered again while it was being reviewed): nothing is recorded (CLI exit 5). Open the
    shot again and review what it shows now."""

    code = "render_changed"


class InputChangedError(StudioError):
    """A file changed while it was being read for a report (``studio verify`` hashed one
    content and read its manifest or watermark from another): nothing is reported of it
    (CLI exit 5). Verify it again once nothing writes to it."""

    code = "input_changed"
