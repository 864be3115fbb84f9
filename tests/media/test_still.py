"""Stills are refused from their header when too large, before any pixel is decoded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.media.errors import FrameTooLargeError, MediaNotFoundError, NotMediaError
from pipelines.media.still import check_still, read_still
from pipelines.reenact.pipeline import load_still
from studio.identity import reference_frames


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (its pixel data is a stub): decoding
    it would need width x height x 3 bytes, reading its header needs 33."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b""))
    return path


def test_a_huge_still_is_refused_from_its_header(tmp_path: Path) -> None:
    big = _png_header(tmp_path / "big.png", 20_000, 12_000)
    with pytest.raises(FrameTooLargeError, match=r"20000x12000 .*refused before decoding"):
        check_still(big)
    with pytest.raises(FrameTooLargeError):
        next(reference_frames(big))  # enrolment and the identify step of a still render
    with pytest.raises(FrameTooLargeError):
        load_still(big)  # the reenactment of a still


def test_a_normal_still_reads_and_junk_is_named(tmp_path: Path) -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 200
    good = tmp_path / "face.png"
    cv2.imwrite(str(good), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert check_still(good) == (64, 48)
    assert np.array_equal(read_still(good), rgb)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(NotMediaError, match="not a readable image"):
        read_still(junk)
    with pytest.raises(MediaNotFoundError):
        check_still(tmp_path / "missing.png")
