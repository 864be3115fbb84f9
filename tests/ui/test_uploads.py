"""Uploads: content decides the type, sizes are limited, names are made safe, and only files
from the upload cache are accepted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.ui.uploads import MB, Kind, UploadDesk, UploadError, format_size, safe_name

from .conftest import DEMO_GRANT, DEMO_SHOT, uploaded


@pytest.fixture
def desk(tmp_path: Path, upload_root: Path) -> UploadDesk:
    return UploadDesk(tmp_path / "data" / "uploads", [upload_root])


def test_a_video_is_copied_into_the_request_folder(desk: UploadDesk, upload_root: Path) -> None:
    up = desk.ingest(uploaded(upload_root, DEMO_SHOT, "My Shot (final).mpg"), Kind.VIDEO, "req-1")
    assert up.path == desk.uploads_dir / "req-1" / "My_Shot_final.mpg"
    assert up.path.read_bytes() == DEMO_SHOT.read_bytes()
    assert "75 frames" in up.detail


def test_text_named_mp4_is_refused(desk: UploadDesk, upload_root: Path) -> None:
    fake = uploaded(upload_root, b"this is not a video\n" * 50, "shot.mp4")
    with pytest.raises(UploadError, match="shot: not a video"):
        desk.ingest(fake, Kind.VIDEO, "req-1", what="shot")
    assert not list((desk.uploads_dir / "req-1").iterdir())
    with pytest.raises(UploadError, match="not audio"):
        desk.ingest(fake, Kind.AUDIO, "req-1")
    with pytest.raises(UploadError, match="not a signed consent document"):
        desk.ingest(fake, Kind.GRANT, "req-1")
    with pytest.raises(UploadError, match="not an Ed25519 public key"):
        desk.ingest(fake, Kind.KEY, "req-1")
    with pytest.raises(UploadError, match="SRT/WebVTT"):
        desk.ingest(uploaded(upload_root, b"\x00\x01binary", "s.srt"), Kind.SCRIPT, "req-1")


def test_content_decides_the_suffix(desk: UploadDesk, upload_root: Path) -> None:
    grant = desk.ingest(uploaded(upload_root, DEMO_GRANT, "grant.txt"), Kind.GRANT, "req-2")
    assert grant.path.name == "grant.txt.json"
    video = desk.ingest(uploaded(upload_root, DEMO_SHOT, "clip.jpg"), Kind.IMAGE_OR_VIDEO,
                        "req-2")
    assert video.path.suffix == ".mpg" and video.detail != "image"
    # An MPEG-PS shot called .mp4 is named for what it holds (the C2PA SDK reads an
    # ingredient by its extension, and refuses an MPEG-PS file called .mp4).
    renamed = desk.ingest(uploaded(upload_root, DEMO_SHOT, "shot.mp4"), Kind.VIDEO, "req-2")
    assert renamed.path.name == "shot.mpg"


def test_small_sizes_are_given_in_kilobytes_and_bytes(desk: UploadDesk,
                                                       upload_root: Path) -> None:
    with pytest.raises(UploadError, match=r"is 20\.0 KB; the limit for a key file is 16\.0 KB"):
        desk.ingest(uploaded(upload_root, b"k" * 20 * 1024, "big.pub"), Kind.KEY, "req-3")
    assert format_size(1) == "1 byte" and format_size(512) == "512 bytes"
    assert format_size(3 * MB) == "3.0 MB"


def test_oversized_and_empty_uploads_are_refused(tmp_path: Path, upload_root: Path) -> None:
    desk = UploadDesk(tmp_path / "uploads", [upload_root], limits={Kind.GRANT: 100})
    with pytest.raises(UploadError, match="the limit for a grant file is"):
        desk.ingest(uploaded(upload_root, DEMO_GRANT, "g.json"), Kind.GRANT, "r")
    with pytest.raises(UploadError, match="is empty"):
        desk.ingest(uploaded(upload_root, b"", "g.json"), Kind.GRANT, "r")
    default = UploadDesk(tmp_path / "uploads", [upload_root])
    assert default.limits[Kind.GRANT] == 1 * MB and default.limits[Kind.AUDIO] == 50 * MB
    assert default.limits[Kind.VIDEO] == 2048 * MB


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system.ini", "system.ini"),
    (".bashrc", "bashrc"),
    ("a/b/../../shot.mp4", "shot.mp4"),
    ("ｓｈｏｔ　１.mp4", "shot_1.mp4"),
    ("shot\x00.mp4", "shot.mp4"),
    ("", "upload"),
    ("..", "upload"),
    ("x" * 300 + ".mp4", "x" * 96 + ".mp4"),
    ("My Shot (final).mpg", "My_Shot_final.mpg"),
    ("archive.tar.gz", "archive.tar.gz"),
])
def test_names_are_made_safe(given: str, expected: str) -> None:
    assert safe_name(given) == expected


def test_paths_outside_the_upload_cache_are_refused(desk: UploadDesk, upload_root: Path,
                                                    tmp_path: Path) -> None:
    outside = tmp_path / "secret.json"
    outside.write_bytes(DEMO_GRANT.read_bytes())
    for path in (str(outside), str(upload_root / ".." / "secret.json"), "/etc/passwd"):
        with pytest.raises(UploadError, match="only files uploaded through the studio"):
            desk.ingest(path, Kind.GRANT, "req-3")
    link = upload_root / "link.json"
    os.symlink(outside, link)
    with pytest.raises(UploadError, match="not a regular file"):
        desk.ingest(str(link), Kind.GRANT, "req-3")
    with pytest.raises(UploadError, match="no file was uploaded"):
        desk.ingest(None, Kind.GRANT, "req-3")
    with pytest.raises(UploadError, match="bad request id"):
        desk.ingest(uploaded(upload_root, DEMO_GRANT, "g.json"), Kind.GRANT, "../escape")
