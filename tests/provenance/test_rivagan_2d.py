"""RivaGAN's graphs with 2-D convolutions (``studio.provenance.rivagan_2d``): the rewrite
computes what the shipped graph computes, on real frames, and the kept copy is used only when
its bytes are the pinned ones."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest

from studio.provenance import rivagan_2d, watermark
from studio.provenance.rivagan_2d import REWRITTEN_SHA256, NotRewritable, rewrite, session_model

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid" / "bbaf2n.mpg"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "consent-dubbing-studio"


def _session(model: bytes | str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", [watermark.DECODER_FILE, watermark.ENCODER_FILE])
def test_rewrite_matches_the_shipped_graph_on_real_frames(name: str) -> None:
    shipped = watermark.model_dir() / name
    data = shipped.read_bytes()
    rewritten = rewrite(data)
    # The pin is this build's output: CI and studios keep and reuse the copy.
    assert hashlib.sha256(rewritten).hexdigest() == REWRITTEN_SHA256[
        hashlib.sha256(data).hexdigest()]
    old, new = _session(str(shipped)), _session(rewritten)
    frames = list(watermark.sample_frames(GRID, 8))[:3]
    for frame, size in zip(frames, [(216, 172), (256, 144), (128, 96)], strict=True):
        feeds = {"frame": watermark._to_tensor(frame, size)}
        if name == watermark.ENCODER_FILE:
            feeds["data"] = np.where(np.arange(32) % 3 == 0, 1.0, 0.0
                                     ).astype(np.float32)[None]
        a, b = old.run(None, feeds)[0], new.run(None, feeds)[0]
        assert a.shape == b.shape
        # Float rounding only: logits are ±1-15, the encoder's picture in [-1, 1].
        assert float(np.abs(a - b).max()) < 1e-4
    if name == watermark.DECODER_FILE:  # the same bits, so the same payloads
        assert (a > 0).tolist() == (b > 0).tolist()


def test_kept_copy_is_reused_and_a_planted_one_ignored(own_cache: Path) -> None:
    shipped = watermark.model_dir() / watermark.DECODER_FILE
    pinned = REWRITTEN_SHA256[hashlib.sha256(shipped.read_bytes()).hexdigest()]
    copy = own_cache / f"rivagan-2d-{pinned[:16]}.onnx"
    made = session_model(shipped)  # no copy yet: rewritten now and kept
    assert copy.read_bytes() == made and hashlib.sha256(made).hexdigest() == pinned

    # A copy with other bytes (here: the shipped 3-D graph, which also runs) is not used:
    # the rewrite is made again and the copy replaced.
    copy.write_bytes(shipped.read_bytes())
    assert session_model(shipped) == made
    assert copy.read_bytes() == made

    copy.write_bytes(made[:-10])  # truncated
    assert session_model(shipped) == made


def test_read_only_cache_still_rewrites(own_cache: Path) -> None:
    own_cache.parent.mkdir(parents=True)
    own_cache.write_text("a file where the folder should be")
    shipped = watermark.model_dir() / watermark.DECODER_FILE
    assert hashlib.sha256(session_model(shipped)).hexdigest() in REWRITTEN_SHA256.values()


def _one_conv(*, depth: int, frames: int, opset: int) -> Any:
    """A model of one 3-D Conv (3 → 2 channels, ``depth``×3×3 kernel, time padded to keep
    ``frames``) over ``[1, 3, frames, 8, 8]``."""
    import onnx
    from onnx import helper, numpy_helper

    pad = depth // 2
    weight = numpy_helper.from_array(np.ones((2, 3, depth, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[depth, 3, 3],
                          pads=[pad, 1, 1, pad, 1, 1])], f"conv-{depth}",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, frames, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, frames, 8, 8])],
        [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_graph_that_is_not_one_frame_is_used_as_shipped(tmp_path: Path) -> None:
    data = _one_conv(depth=3, frames=4, opset=13).SerializeToString()
    with pytest.raises(NotRewritable, match="not a one-frame convolution"):
        rewrite(data)
    path = tmp_path / "temporal.onnx"
    path.write_bytes(data)
    assert session_model(path) == data
    assert not rivagan_2d.cache_dir().exists()  # nothing kept for an unpinned model


def test_watermark_sessions_run_the_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector and embedder load the 2-D graphs, and a round trip still reads the
    payload."""
    given: list[str] = []

    def spy(path: Path) -> bytes:
        model = session_model(path)
        given.append(hashlib.sha256(model).hexdigest())
        return model

    monkeypatch.setattr(rivagan_2d, "session_model", spy)
    monkeypatch.setattr(watermark, "_SESSIONS", {})
    frames = list(watermark.sample_frames(GRID, 6))
    embedder = watermark.WatermarkEmbedder(0x00C08271)
    marked = [embedder.mark(f, i) for i, f in enumerate(frames)]
    assert watermark.WatermarkDetector().detect_sequential(marked).payload == 0x00C08271
    assert sorted(given) == sorted(REWRITTEN_SHA256.values())


def test_a_planted_fifo_or_folder_costs_time_never_a_hang(own_cache: Path) -> None:
    """A FIFO at the kept copy's name (opening it for reading would wait for a writer
    forever), or a folder there, is passed over: the rewrite is made now and used."""
    import os
    import threading

    shipped = watermark.model_dir() / watermark.DECODER_FILE
    pinned = REWRITTEN_SHA256[hashlib.sha256(shipped.read_bytes()).hexdigest()]
    copy = own_cache / f"rivagan-2d-{pinned[:16]}.onnx"
    own_cache.mkdir(parents=True)
    os.mkfifo(copy)
    made: list[bytes] = []
    reader = threading.Thread(target=lambda: made.append(session_model(shipped)), daemon=True)
    reader.start()
    reader.join(60)
    if reader.is_alive():  # unblock the reader, then fail
        with open(os.open(copy, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
        pytest.fail("session_model waited on a FIFO in the cache")
    assert hashlib.sha256(made[0]).hexdigest() == pinned

    copy.unlink()
    copy.mkdir()
    assert hashlib.sha256(session_model(shipped)).hexdigest() == pinned


def test_keep_never_writes_through_a_planted_link(tmp_path: Path, own_cache: Path) -> None:
    """The temporary file is new (O_EXCL, a random name): a link planted at the name a
    writer used to choose (``.<name>.<pid>``) is not written through."""
    import os

    from pipelines.user_cache import keep

    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    own_cache.mkdir(parents=True)
    target = own_cache / "kept.bin"
    (own_cache / f".{target.name}.{os.getpid()}").symlink_to(victim)
    data = b"derived bytes"
    assert keep(target, data, hashlib.sha256(data).hexdigest())
    assert victim.read_text() == "mine"
    assert target.read_bytes() == data and not target.is_symlink()


def test_no_home_folder_keeps_nothing_and_still_rewrites(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A process with neither ``$XDG_CACHE_HOME`` nor a home folder (an arbitrary container
    uid: ``Path.home()`` raises) rewrites and keeps nothing, instead of failing the read."""
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert rivagan_2d.cache_dir() is None
    shipped = watermark.model_dir() / watermark.ENCODER_FILE
    assert hashlib.sha256(session_model(shipped)).hexdigest() in REWRITTEN_SHA256.values()


def test_a_model_of_its_own_is_used_as_given(tmp_path: Path) -> None:
    """A ``STUDIO_RIVAGAN_DIR`` model whose bytes are not the shipped ones is given to
    onnxruntime as it is, not rewritten: here one that onnxruntime runs and onnx 1.17's
    checker refuses (IR version 11), which used to fail the watermark read."""
    model = _one_conv(depth=1, frames=1, opset=21)
    model.ir_version = 11
    data = model.SerializeToString()
    path = tmp_path / "own.onnx"
    path.write_bytes(data)
    assert session_model(path) == data
    _session(session_model(path))  # onnxruntime runs it
    assert not rivagan_2d.cache_dir().exists()
