"""The one translation table (studio/services/errors.py): every error of the three families
maps to the exit code, HTTP status and message the README documents; anything else is a bug
(``None``: the front end reports an internal error, never a verdict)."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel, ValidationError

import consent.errors
import pipelines.errors
import studio.errors
from consent.errors import ConsentError, DuplicateError, NotFoundError
from pipelines.errors import ModelMissingError, PipelineInputError
from pipelines.media.errors import MediaNotFoundError, NotMediaError
from pipelines.qc.errors import QCInputError, QCNotFoundError
from studio.accounts import AccessDenied
from studio.errors import (
    InputNotFoundError,
    OutputExistsError,
    RenderCancelled,
    RequestError,
    SelectionError,
    SettingsError,
    UsageError,
)
from studio.services.errors import TABLE, translate


@pytest.mark.parametrize(("error", "exit_code", "status"), [
    (RenderCancelled("cancelled; nothing was published"), 1, 409),
    (AccessDenied("needs the auditor role"), 1, 403),
    (SelectionError("there is no face track t7"), 2, 400),
    (UsageError("give exactly one of --grant or --key"), 2, 400),
    (SettingsError("STUDIO_RENDER_CRF='abc'"), 2, 400),
    (InputNotFoundError("source: x.mp4 is not a readable file"), 4, 404),
    (NotFoundError("no grant g-1"), 4, 404),
    (MediaNotFoundError("x.mp4", "no such file"), 4, 404),
    (QCNotFoundError("no such file"), 4, 404),
    (OutputExistsError("an output named a.mp4 already exists"), 5, 409),
    (DuplicateError("grant g-1 already imported"), 5, 409),
    (ConsentError("signature does not verify"), 3, 422),
    (RequestError("a lip-sync needs a dub or a script"), 3, 422),
    (NotMediaError("/etc/passwd", "not audio or video"), 3, 422),
    (PipelineInputError("0.1 s of audio: loudness needs >= 0.4 s"), 3, 422),
    (QCInputError("no face"), 3, 422),
    (ModelMissingError("musetalk-1.5/unet.pth is not installed"), 3, 503),
    (FileNotFoundError("draft.yaml"), 3, 422),
])
def test_each_family_maps_as_documented(error: BaseException, exit_code: int,
                                        status: int) -> None:
    said = translate(error)
    assert said is not None
    assert (said.exit_code, said.http_status) == (exit_code, status)
    assert said.message and said.kind


def test_a_validation_error_reads_as_a_sentence() -> None:
    class Request(BaseModel):
        language: str

    with pytest.raises(ValidationError) as caught:
        Request.model_validate({})
    said = translate(caught.value)
    assert said is not None and said.exit_code == 3 and "language" in said.message
    assert "pydantic" not in said.message


@pytest.mark.parametrize("error", [ValueError("bare"), KeyError("k"), RuntimeError("bug")])
def test_an_error_no_family_claims_is_a_bug(error: BaseException) -> None:
    assert translate(error) is None


@pytest.mark.parametrize("module", [consent.errors, pipelines.errors, studio.errors])
def test_every_class_of_the_three_families_is_claimed(module: object) -> None:
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Exception) and c.__module__ == module.__name__]  # type: ignore[attr-defined]
    assert classes
    for cls in classes:
        assert translate(cls.__new__(cls)) is not None, cls


def test_more_specific_rows_come_first() -> None:
    for i, (cls, _, _) in enumerate(TABLE):
        for earlier, _, _ in TABLE[:i]:
            assert not issubclass(cls, earlier) or cls is earlier, (cls, earlier)
