"""Uploads: size limits, type checked by content, safe names, one folder per request.

Gradio writes an upload into its own cache folder and hands the handler that path. Nothing
else of the user's reaches the filesystem: :func:`ingest` accepts only a regular file inside
the allowed upload roots, checks its size, sniffs its content (media are probed, grants and
keys parsed strictly, scripts parsed), and copies it to
``<data>/uploads/<request id>/<safe name>``; the render and the registry only ever see that
copy.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from studio.errors import UploadError as UploadError

MB = 1024 * 1024


class Kind(StrEnum):
    VIDEO = "video"  # a shot or a driving video: must have a video stream
    AUDIO = "audio"  # a dub or an M&E stem: any media with an audio stream
    IMAGE_OR_VIDEO = "reference"  # enrolment media: a still image or a video
    GRANT = "grant"  # a signed consent document (JSON)
    KEY = "key"  # a performer's public key (PEM)
    SCRIPT = "script"  # a translated script (SRT or WebVTT)
    MOTION = "motion"  # a reenactment motion file (.motion.npz)
    ANY = "any"  # anything (verify): size-checked and copied, never interpreted here


LIMITS: dict[Kind, int] = {
    Kind.VIDEO: 2048 * MB,
    Kind.AUDIO: 50 * MB,
    Kind.IMAGE_OR_VIDEO: 2048 * MB,
    Kind.GRANT: 1 * MB,
    Kind.KEY: 16 * 1024,
    Kind.SCRIPT: 1 * MB,
    Kind.MOTION: 200 * MB,
    Kind.ANY: 2048 * MB,
}

#: The largest upload Gradio itself accepts (``launch(max_file_size=...)``).
MAX_UPLOAD = max(LIMITS.values())

_VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".mxf",
                   ".ts"}
_AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", *_VIDEO_SUFFIXES}
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"BM", ".bmp"),
    (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


_IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_NEUTRAL = ".upload"


@dataclass(frozen=True)
class Upload:
    path: Path  # the checked copy inside the data folder
    original_name: str
    size: int
    kind: Kind
    detail: str = ""


def format_size(size: int) -> str:
    """``512 bytes``, ``16.0 KB``, ``2,048.0 MB``: a unit that keeps small sizes readable."""
    if size < 1024:
        return f"{size} byte" + ("" if size == 1 else "s")
    if size < MB:
        return f"{size / 1024:,.1f} KB"
    return f"{size / MB:,.1f} MB"


def new_request_id(prefix: str = "req") -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


def safe_name(name: str, default: str = "upload") -> str:
    """A plain file name: no folders, no dot files, letters/digits/``._-`` only, ≤ 100 chars."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFKC", name or ""))[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem.strip("._- ") or len(suffix) > 10:
        stem, suffix = base, ""

    def clean(part: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._-")

    stem, suffix = re.sub(r"\.{2,}", ".", clean(stem)), clean(suffix).replace(".", "")
    if not stem:
        return default
    if suffix:
        return f"{stem[: 100 - len(suffix) - 1]}.{suffix}"
    return stem[:100]


def _image_suffix(head: bytes) -> str | None:
    for magic, suffix in _IMAGE_MAGIC:
        if head.startswith(magic):
            return suffix
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


class UploadDesk:
    """Checks and files the uploads of one studio (see the module docstring)."""

    def __init__(self, uploads_dir: Path, allowed_roots: Sequence[Path],
                 limits: dict[Kind, int] | None = None) -> None:
        self.uploads_dir = uploads_dir
        self.allowed_roots = [Path(r).resolve() for r in allowed_roots]
        self.limits = {**LIMITS, **(limits or {})}

    def folder(self, request_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", request_id):
            raise UploadError(f"bad request id {request_id!r}")
        folder = self.uploads_dir / request_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _source(self, given: str | os.PathLike[str] | None, what: str) -> Path:
        if given is None or str(given) == "":
            raise UploadError(f"{what}: no file was uploaded")
        path = Path(os.path.abspath(given))
        if not _inside(path, self.allowed_roots):
            raise UploadError(f"{what}: only files uploaded through the studio are accepted")
        try:
            st = path.lstat()
        except OSError:
            raise UploadError(f"{what}: the upload has gone (try again)") from None
        if not stat.S_ISREG(st.st_mode):
            raise UploadError(f"{what}: not a regular file")
        real = path.resolve()
        if not _inside(real, self.allowed_roots):
            raise UploadError(f"{what}: only files uploaded through the studio are accepted")
        return real

    def ingest(self, given: str | os.PathLike[str] | None, kind: Kind, request_id: str, *,
               what: str = "upload", original_name: str | None = None) -> Upload:
        """Check one upload and copy it into the request's folder (module docstring)."""
        source = self._source(given, what)
        size = source.stat().st_size
        limit = self.limits[kind]
        name = original_name or source.name
        if size == 0:
            raise UploadError(f"{what}: {safe_name(name)} is empty")
        if size > limit:
            raise UploadError(f"{what}: {safe_name(name)} is {format_size(size)}; the limit "
                              f"for a {kind.value} file is {format_size(limit)}")
        with source.open("rb") as fh:
            head = fh.read(64)
        target_name = safe_name(name)
        media_suffixes = {Kind.VIDEO: _VIDEO_SUFFIXES, Kind.AUDIO: _AUDIO_SUFFIXES,
                          Kind.IMAGE_OR_VIDEO: _VIDEO_SUFFIXES}.get(kind)
        if media_suffixes is not None and Path(target_name).suffix.lower() not in media_suffixes:
            # A misleading extension must not steer the demuxer: probe under a neutral one.
            target_name = f"{Path(target_name).stem}{_NEUTRAL}"
        folder = self.folder(request_id)
        target = folder / target_name
        if target.exists():
            target = folder / f"{secrets.token_hex(3)}-{target_name}"
        shutil.copyfile(source, target)
        try:
            detail, suffix = self._sniff(target, kind, head, what)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        if suffix is not None and target.suffix.lower() != suffix:
            replace = target.suffix.lower() in (_VIDEO_SUFFIXES | _AUDIO_SUFFIXES | _IMAGES
                                                | {_NEUTRAL})
            fixed = target.with_name((target.stem if replace else target.name) + suffix)
            if not fixed.exists():
                target = target.rename(fixed)
        return Upload(target, name, size, kind, detail)

    def _sniff(self, path: Path, kind: Kind, head: bytes, what: str) -> tuple[str, str | None]:
        """Confirm the content is what ``kind`` says; returns (detail, suffix to use)."""
        if kind is Kind.ANY:
            return "", None
        if kind is Kind.GRANT:
            return _sniff_json(path, what), ".json"
        if kind is Kind.KEY:
            from consent.errors import ConsentError
            from consent.keys import load_public_key

            try:
                key = load_public_key(path.read_bytes())
            except ConsentError as exc:  # DocumentError: not base64, not PEM, not Ed25519
                raise UploadError(f"{what}: not an Ed25519 public key (PEM): {exc}") from None
            return f"key {key.key_id[:16]}…", ".pub"
        if kind is Kind.SCRIPT:
            from pipelines.speech.script import ScriptError, load_script

            try:
                script = load_script(path.read_bytes(), fmt=_script_format(path, head))
            except ScriptError as exc:
                raise UploadError(f"{what}: not a usable SRT/WebVTT script: {exc}") from None
            return f"{len(script.cues)} cues", None
        if kind is Kind.MOTION:
            from pipelines.reenact.motion_file import MotionFileError, load_motion

            if not head.startswith(b"PK"):
                raise UploadError(f"{what}: not a motion file (a .motion.npz archive)")
            try:
                motion = load_motion(path)
            except (MotionFileError, OSError, ValueError) as exc:
                raise UploadError(f"{what}: not a usable motion file: {exc}") from None
            return f"{len(motion.present)} frames of motion", None
        image = _image_suffix(head)
        if kind is Kind.IMAGE_OR_VIDEO and image is not None:
            import cv2
            import numpy as np

            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            if cv2.imdecode(data, cv2.IMREAD_COLOR) is None:
                raise UploadError(f"{what}: the image cannot be decoded")
            return "image", image
        from pipelines.media import MediaError, probe

        try:
            info = probe(path, require_video=kind in (Kind.VIDEO, Kind.IMAGE_OR_VIDEO))
        except MediaError as exc:
            expected = {Kind.VIDEO: "a video", Kind.AUDIO: "audio or video with sound",
                        Kind.IMAGE_OR_VIDEO: "an image or a video"}[kind]
            raise UploadError(f"{what}: not {expected} ({exc})") from None
        if kind is Kind.AUDIO and not info.audio:
            raise UploadError(f"{what}: the file has no audio stream")
        suffix = path.suffix.lower()
        allowed = _AUDIO_SUFFIXES if kind is Kind.AUDIO else _VIDEO_SUFFIXES
        if info.video is not None:
            detail = (f"{info.video.width}×{info.video.height}, {info.video.frame_count} frames "
                      f"at {float(info.video.frame_rate):.2f} fps")
        else:
            detail = f"audio, {float(info.duration or 0):.1f} s"
        named = _container_suffixes(info.format_name)
        if named and suffix not in named:
            # Named after what it holds: the C2PA SDK reads an ingredient by its extension
            # (an MPEG-PS shot called .mp4 cannot be signed as an ingredient).
            return detail, named[0]
        return detail, None if suffix in allowed else (".mp4" if info.video else ".wav")


#: FFmpeg's container names and the extensions that say them (the first one is given).
_CONTAINERS: dict[str, tuple[str, ...]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": (".mp4", ".mov", ".m4v", ".m4a"),
    "mpeg": (".mpg", ".mpeg"), "mpegts": (".ts",), "matroska,webm": (".mkv", ".webm"),
    "avi": (".avi",), "mxf": (".mxf",), "wav": (".wav",), "flac": (".flac",),
    "mp3": (".mp3",), "ogg": (".ogg", ".opus"), "aac": (".aac",),
}


def _container_suffixes(format_name: str) -> tuple[str, ...]:
    return _CONTAINERS.get(format_name, ())


def _sniff_json(path: Path, what: str) -> str:
    import json

    raw = path.read_bytes()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UploadError(f"{what}: not a signed consent document (JSON)") from None
    if not isinstance(value, dict) or "signed" not in value or "signatures" not in value:
        raise UploadError(f"{what}: not a signed consent document (expected 'signed' and "
                          "'signatures')")
    return "signed document"


def _script_format(path: Path, head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"WEBVTT"):
        return "vtt"
    return "srt"
