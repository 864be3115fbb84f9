"""Motion files: keep a driver's performance without keeping the driver's video.

A motion file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays; written compressed, read
with ``allow_pickle=False`` so a hostile file cannot run code) holding:

* ``header``: UTF-8 JSON, ``{"schema": "consent-dubbing-studio/reenact-motion", "version": 2,
  "frame_rate": "25/1", "frame_count": n, "neutral_frame": k, "vertices": 468,
  "pose_fields": [...], "features": {...}, "identity": {"video_sha256", "embedder",
  "track_id"}, "source": name}``;
* ``deltas``: float16 ``[n, V, 3]`` expression deltas in the driver's canonical units
  (inter-ocular distance = 1; float16 keeps ~1e-4 of it, far below the mesh's own noise);
* ``vertices``: int16 ``[V]``, the mesh indices the deltas belong to (all 468 surface vertices
  in version 1; a later version may keep fewer);
* ``pose``: float32 ``[n, 6]`` (yaw, pitch, roll, log scale, tx, ty; ``motion.POSE_FIELDS``);
* ``present``: uint8 ``[n]``;
* ``embeddings``: float32 ``[k, d]``, the driver's identity embeddings (``DriverIdentity``);
* ``seal``: the registry's signed seal (UTF-8 JSON, opaque here; ``consent.motion_seal``).

No pixel and no absolute mesh is stored: only changes relative to the neutral frame, a few
feature sizes and the identity reference the consent gate needs. A minute at 25 fps is about
2-4 MB.

The *payload* is every member but the seal; :func:`payload_digest` is its SHA-256 (each
member's name, dtype, shape and bytes, the header's bytes included). The file is written only
with a seal over that digest (``save_motion(..., seal=...)``), so the embeddings a render
matches are the ones the registry signed. Version 1 files carried an unkeyed hash in the
header instead: anyone could swap the embeddings and recompute it, so they are refused with
a request to re-extract.

Loading refuses, with one error type (:class:`MotionFileError`) and a message naming the
problem: a file that is not a readable archive, a missing member or seal, another schema or
version, arrays whose shapes disagree with the header, or non-finite values. Whether the seal
vouches for the payload is the render's check (``consent.motion_seal.verify_seal``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import PipelineInputError
from pipelines.reenact.model import SURFACE, Features
from pipelines.reenact.motion import POSE_FIELDS, DriverIdentity, Motion

SCHEMA: Final = "consent-dubbing-studio/reenact-motion"
VERSION: Final = 2
SUFFIX: Final = ".motion.npz"
_MEMBERS: Final = ("header", "deltas", "vertices", "pose", "present", "embeddings")
_SEAL: Final = "seal"
#: Far above any real seal (~1 kB); a bigger member is refused before it is decoded.
_MAX_SEAL_BYTES: Final = 64 * 1024

Sealer = Callable[[str], bytes]
"""Given the payload digest, the signed seal to store with it (the registry issues it)."""


class MotionFileError(PipelineInputError):
    """A motion file that cannot be used: corrupt, truncated, unsealed, or of another
    schema/version."""


@dataclass(frozen=True)
class MotionFile:
    """A motion file as read: the motion, its seal (unchecked) and its payload digest."""

    motion: Motion
    seal: bytes
    payload_sha256: str
    version: int = VERSION


def payload_digest(arrays: dict[str, NDArray[Any]]) -> str:
    """SHA-256 over every member but the seal: name, dtype, shape and bytes of each."""
    digest = hashlib.sha256()
    for name in _MEMBERS:
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_motion(motion: Motion, path: str | os.PathLike[str], *, seal: Sealer) -> Path:
    """Write ``motion`` to ``path`` atomically (a temporary file renamed into place), with
    the seal ``seal`` returns for its payload digest."""
    out = Path(path)
    arrays: dict[str, NDArray[Any]] = {
        "deltas": motion.deltas.astype(np.float16),
        "vertices": np.arange(SURFACE, dtype=np.int16),
        "pose": motion.pose.astype(np.float32),
        "present": motion.present.astype(np.uint8),
        "embeddings": np.ascontiguousarray(motion.identity.embeddings, dtype=np.float32),
    }
    rate = motion.frame_rate
    header = {
        "schema": SCHEMA, "version": VERSION,
        "frame_rate": f"{rate.numerator}/{rate.denominator}",
        "frame_count": motion.frame_count, "neutral_frame": motion.neutral_frame,
        "vertices": SURFACE, "pose_fields": list(POSE_FIELDS),
        "features": motion.features.to_json(),
        "identity": {"video_sha256": motion.identity.video_sha256,
                     "embedder": motion.identity.embedder,
                     "track_id": motion.identity.track_id},
        "source": motion.source_name,
    }
    arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
    sealed = seal(payload_digest(arrays))
    if not sealed or len(sealed) > _MAX_SEAL_BYTES:
        raise MotionFileError(f"{out.name}: a motion file is written only with a seal "
                              f"(1 to {_MAX_SEAL_BYTES} bytes)")
    arrays[_SEAL] = np.frombuffer(sealed, np.uint8)
    # A private temporary name, then a hard link that refuses an existing file: two
    # extractions to the same path cannot overwrite each other's sealed file.
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.part")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    tmp.write_bytes(buffer.getvalue())
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise MotionFileError(f"{out}: exists; not overwriting") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_motion(path: str | os.PathLike[str]) -> Motion:
    """The motion of a motion file (:func:`read_motion_file`; the seal is not checked)."""
    return read_motion_file(path).motion


def read_motion_file(path: str | os.PathLike[str]) -> MotionFile:
    """Read a motion file, refusing anything but a whole, sealed file of this schema and
    version. The seal is returned unchecked: a render verifies it against the registry."""
    src = Path(path)
    try:
        with np.load(src, allow_pickle=False) as archive:
            missing = [m for m in _MEMBERS if m not in archive.files]
            if missing:
                raise MotionFileError(f"{src.name}: not a motion file (missing {missing})")
            arrays = {m: archive[m] for m in _MEMBERS}
            sealed = archive[_SEAL] if _SEAL in archive.files else None
    except MotionFileError:
        raise
    except FileNotFoundError:
        raise
    # zlib.error: a flipped byte inside a deflated member surfaces only when it is read.
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as exc:
        raise MotionFileError(f"{src.name}: unreadable motion file ({exc})") from exc
    try:
        header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MotionFileError(f"{src.name}: corrupt header ({exc})") from exc
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        schema = header.get("schema") if isinstance(header, dict) else None
        raise MotionFileError(f"{src.name}: schema {schema!r} is not {SCHEMA!r}")
    if header.get("version") == 1:
        raise MotionFileError(f"{src.name}: an unsigned motion file (version 1, made before "
                              "the registry sealed motion files); its identity embeddings "
                              "cannot be trusted. Re-extract it from the driving video with "
                              "`studio motion extract`")
    if header.get("version") != VERSION:
        raise MotionFileError(f"{src.name}: motion file version {header.get('version')!r}; "
                              f"this studio reads version {VERSION}")
    if sealed is None or sealed.dtype != np.uint8 or sealed.ndim != 1 or not sealed.size:
        raise MotionFileError(f"{src.name}: the motion file carries no registry seal "
                              "(unsigned); re-extract it with `studio motion extract`")
    if sealed.size > _MAX_SEAL_BYTES:
        raise MotionFileError(f"{src.name}: the seal is {sealed.size} bytes, over "
                              f"{_MAX_SEAL_BYTES}")
    motion = _motion(src.name, header, arrays)
    return MotionFile(motion, sealed.tobytes(), payload_digest(arrays))


def _motion(name: str, header: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> Motion:
    try:
        n = int(header["frame_count"])
        rate = Fraction(str(header["frame_rate"]))
        vertices = int(header["vertices"])
        features = Features.from_json(header["features"])
        ident = header["identity"]
        neutral = int(header["neutral_frame"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise MotionFileError(f"{name}: incomplete header ({exc!r})") from exc
    shapes = {"deltas": (n, vertices, 3), "vertices": (vertices,),
              "pose": (n, len(POSE_FIELDS)), "present": (n,)}
    for member, shape in shapes.items():
        if arrays[member].shape != shape:
            raise MotionFileError(f"{name}: {member} is {arrays[member].shape}, the header "
                                  f"says {shape}")
    if vertices != SURFACE or not np.array_equal(arrays["vertices"], np.arange(SURFACE)):
        raise MotionFileError(f"{name}: version {VERSION} holds all {SURFACE} surface vertices")
    if header.get("pose_fields") != list(POSE_FIELDS):
        raise MotionFileError(f"{name}: unexpected pose fields {header.get('pose_fields')}")
    if arrays["embeddings"].ndim != 2:
        raise MotionFileError(f"{name}: embeddings must be a [k, d] array")
    deltas = arrays["deltas"].astype(np.float32)
    pose = arrays["pose"].astype(np.float32)
    if not (np.isfinite(deltas).all() and np.isfinite(pose).all()):
        raise MotionFileError(f"{name}: non-finite values in the motion")
    if rate <= 0 or n < 1 or not 0 <= neutral < n:
        raise MotionFileError(f"{name}: frame rate {rate}, {n} frames, neutral frame {neutral}")
    identity = DriverIdentity(str(ident.get("video_sha256", "")), ident.get("embedder"),
                              arrays["embeddings"].astype(np.float32),
                              int(ident.get("track_id", -1)))
    return Motion(rate, deltas, pose, arrays["present"].astype(bool), neutral, features,
                  identity, str(header.get("source", "")))
