"""Opening an input file, turning every FFmpeg failure into the right ``MediaError``.

FFmpeg answers "Invalid data found when processing input" both for a text file and for an
MP4 whose index was cut off, but the operator should hear different things: "this is not
media" versus "this upload is incomplete". The first bytes tell them apart: a file that
carries a known container signature and still does not open is truncated or damaged.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import av.container
from av.stream import Stream

from .errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaNotFoundError,
    NotMediaError,
    TruncatedMediaError,
)

_MOV_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def sniff(head: bytes) -> str | None:
    """The container family that ``head`` (the first bytes of a file) announces, if any."""
    if len(head) >= 8 and head[4:8] in _MOV_BOXES:
        return "MP4/QuickTime"
    signatures = (
        (b"\x1aE\xdf\xa3", "Matroska/WebM"),
        (b"RIFF", "RIFF (WAV/AVI)"),
        (b"\x00\x00\x01\xba", "MPEG program stream"),
        (b"\x00\x00\x01\xb3", "MPEG video"),
        (b"OggS", "Ogg"),
        (b"fLaC", "FLAC"),
        (b"ID3", "MP3"),
        (b"FLV", "FLV"),
        (b"\x89PNG", "PNG"),
        (b"YUV4MPEG2", "YUV4MPEG2"),
        (b"0&\xb2u", "ASF/WMV"),
        (b"\x00\x00\x00\x01", "H.264/HEVC elementary stream"),
    )
    for magic, name in signatures:
        if head.startswith(magic):
            return name
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG transport stream"
    return None


def check_file(path: str | os.PathLike[str]) -> Path:
    """Refuse a missing, non-regular or zero-length path before FFmpeg sees it."""
    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(p, "no such file")
    if not p.is_file():
        raise NotMediaError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise EmptyMediaError(p, "zero-length file (0 bytes)")
    return p


def open_input(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open ``path`` for reading, or raise the ``MediaError`` that says why it cannot be."""
    p = check_file(path)
    try:
        container = av.open(str(p), mode="r", metadata_errors="replace")
    except av.FFmpegError as exc:
        with p.open("rb") as fh:
            family = sniff(fh.read(256))
        detail = getattr(exc, "strerror", None) or str(exc)
        if family is not None:
            raise TruncatedMediaError(
                p, f"starts like {family} but FFmpeg cannot parse it ({detail}): "
                   "the file is truncated or damaged") from exc
        raise NotMediaError(p, f"not an audio or video file FFmpeg recognises ({detail})"
                            ) from exc
    if not container.streams:
        container.close()
        raise NotMediaError(p, "the container holds no streams")
    return container


def require_decoder(path: str | os.PathLike[str], stream: Stream) -> None:
    """Refuse a stream FFmpeg cannot decode: it has no codec context then.

    That happens for codecs FFmpeg does not know and, more often, for a header cut or
    damaged before the stream's codec parameters (a truncated MP4 index).
    """
    if stream.codec_context is None:  # typed as always present; it is not
        raise CorruptMediaError(
            path, f"stream {stream.index} ({stream.type}) cannot be decoded: unknown codec, "
                  "or the header describing it is damaged or truncated")
