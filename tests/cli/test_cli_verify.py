"""`studio verify` starts the watermark read before it opens the registry (issue 14, speed):
its answer is the one a read taken in line gives, and a file the read cannot decode is
reported the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipelines.media import VideoReader, VideoWriter
from studio.cli import app
from studio.provenance import payload_code
from studio.provenance.watermark import WatermarkEmbedder
from studio.services.context import AppContext
from studio.services.verify import start_watermark_read, verify
from studio.settings import Settings

runner = CliRunner()
CLIP = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid" / "bbaf2n.mpg"
PAYLOAD = payload_code.encode(0x0C1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("verify") / "data"
    result = runner.invoke(app, ["--data", str(d), "init", "--no-demo", "--json"])
    assert result.exit_code == 0, result.output
    return d


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("marked") / "marked.mp4"
    embedder = WatermarkEmbedder(PAYLOAD)
    with VideoReader(CLIP) as reader, VideoWriter(dst, like=reader.output) as writer:
        for frame in reader:
            writer.write(embedder.mark(frame.rgb, frame.index))
    return dst


def _in_line(data: Path, file: Path) -> dict[str, Any]:
    ctx = AppContext.open(Settings.from_env(data))
    try:
        report = verify(ctx, file)
    finally:
        ctx.close()
    answer: dict[str, Any] = json.loads(json.dumps(report.to_json(), default=str))
    return answer


def _cli(data: Path, file: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["--data", str(data), "verify", "--json", str(file)])
    assert result.exit_code == 1, result.output  # no manifest: not verified
    answer: dict[str, Any] = json.loads(result.output)
    return answer


def test_the_early_read_gives_the_in_line_answer(data: Path, marked: Path) -> None:
    cli = _cli(data, marked)
    assert cli["watermark"]["status"] == "found"
    assert cli["watermark"]["payload"] == f"{PAYLOAD:08x}"
    assert cli == _in_line(data, marked)


def test_an_undecodable_file_is_reported_as_before(data: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    cli = _cli(data, text)
    assert cli["watermark"] is None
    assert "not a readable media file" in cli["watermark_error"]
    assert cli == _in_line(data, text)


def test_no_read_is_started_for_a_missing_file(tmp_path: Path) -> None:
    assert start_watermark_read(tmp_path / "absent.mp4") is None


def test_a_file_written_to_during_verify_gets_no_report(
        data: Path, marked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash, the manifest and the watermark are three reads: a write between them would
    give a report of two contents. It gives none: exit 5 and a message, in the CLI and the
    service (the check is in ``verify_file``, and again around the service's own reads)."""
    import shutil

    from studio.provenance import verify as verify_module

    victim = tmp_path / "victim.mp4"
    shutil.copyfile(marked, victim)
    real = verify_module._detect

    def write_then_detect(path: Path, *args: Any, **kwargs: Any) -> Any:
        with open(path, "ab") as fh:  # another process appends while verify reads
            fh.write(b"\0" * 16)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(verify_module, "_detect", write_then_detect)
    result = runner.invoke(app, ["--data", str(data), "verify", "--json", str(victim)])
    assert result.exit_code == 5, result.output
    body = json.loads(result.output)
    assert body["ok"] is False and "changed while it was being verified" in body["message"]
    ctx = AppContext.open(Settings.from_env(data))
    try:
        with pytest.raises(Exception, match="changed while it was being verified"):
            verify(ctx, victim)
    finally:
        ctx.close()


def test_a_read_started_before_the_file_changed_is_not_taken(
        data: Path, marked: Path, tmp_path: Path) -> None:
    """A watermark read started on the file as it was (the entry point's early read) is
    read again when the file has changed since, whatever its mtime says; a future the
    service did not start is never taken either."""
    import os
    import shutil
    from concurrent.futures import Future

    victim = tmp_path / "victim.mp4"
    shutil.copyfile(marked, victim)
    early = start_watermark_read(victim)
    assert early is not None and early.result().payload == PAYLOAD
    stat = victim.stat()
    victim.write_text("not a video any more")  # rewritten in place, mtime set back
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    foreign: Future[Any] = Future()
    foreign.set_result(early.result())
    ctx = AppContext.open(Settings.from_env(data))
    try:
        for handed in (early, foreign):
            report = verify(ctx, victim, watermark_read=handed)
            assert report.watermark is None and report.watermark_error is not None
    finally:
        ctx.close()
