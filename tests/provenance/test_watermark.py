"""The RivaGAN video watermark on real media: GRID clips through H.264, and a still image."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipelines.media import VideoReader, VideoWriter
from studio.provenance import watermark as wm
from studio.provenance.watermark import (
    Detection,
    WatermarkDetector,
    WatermarkEmbedder,
    WatermarkModelMissingError,
    bits_payload,
    payload_bits,
)

MEDIA = Path(__file__).resolve().parents[2] / "assets" / "media"
CLIP_A = MEDIA / "grid" / "brbk7n.mpg"
CLIP_B = MEDIA / "grid" / "id2_vcd_swwp2s.mpg"
UNMARKED = MEDIA / "grid" / "bbaf2n.mpg"
PAYLOAD_A = 0x00C0FFEE
PAYLOAD_B = 0x1234ABCD
ISSUED = [PAYLOAD_A, PAYLOAD_B, 0x00000001, 0x0BADF00D]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse)


def errors(detection: Detection, payload: int) -> int:
    return bin(detection.bits ^ payload).count("1")


def mark_file(src: Path, dst: Path, payload: int) -> float:
    """Mark while encoding (CRF 18 master); return the mean whole-frame PSNR."""
    embedder = WatermarkEmbedder(payload)
    scores = []
    with VideoReader(src) as reader, VideoWriter(dst, like=reader.output) as writer:
        for frame in reader:
            marked = embedder.mark(frame.rgb, frame.index)
            scores.append(psnr(frame.rgb, marked))
            writer.write(marked)
    assert embedder.key_frames <= 4  # a static shot: about one key frame per 25 frames
    return float(np.mean(scores))


def reencode(src: Path, dst: Path, *, crf: int, scale: float = 1.0) -> None:
    """What a platform does to an upload: decode, resize, x264 again."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        w = int(vin.codec_context.width * scale) // 2 * 2
        h = int(vin.codec_context.height * scale) // 2 * 2
        vout = out.add_stream("libx264", rate=25)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.codec_context.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in inp.decode(vin):
            for packet in vout.encode(frame.reformat(width=w, height=h, format="yuv420p")):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("wm")
    psnr_a = mark_file(CLIP_A, tmp / "a.mp4", PAYLOAD_A)
    psnr_b = mark_file(CLIP_B, tmp / "b.mp4", PAYLOAD_B)
    reencode(tmp / "a.mp4", tmp / "a_half.mp4", crf=23, scale=0.5)
    reencode(tmp / "b.mp4", tmp / "b_half.mp4", crf=23, scale=0.5)
    return {"dir": tmp, "psnr_a": psnr_a, "psnr_b": psnr_b}


def test_payload_bits_round_trip() -> None:
    for value in (0, 1, PAYLOAD_A, 0xFFFFFFFF):
        bits = payload_bits(value)
        assert bits.shape == (32,) and bits.dtype == np.float32
        assert bits_payload(bits) == value
    assert payload_bits(1)[-1] == 1.0 and payload_bits(1 << 31)[0] == 1.0
    with pytest.raises(ValueError):
        payload_bits(1 << 32)
    with pytest.raises(ValueError):
        payload_bits(-1)
    with pytest.raises(TypeError):
        payload_bits(True)


def test_psnr_of_marked_frames(files: dict[str, object]) -> None:
    # The bound is structural (|change| ≤ 3 levels ⇒ ≥ 38.6 dB); check the real figure.
    assert float(files["psnr_a"]) >= 38.0  # type: ignore[arg-type]
    assert float(files["psnr_b"]) >= 38.0  # type: ignore[arg-type]


@pytest.mark.xfail(strict=False, reason=(
    "known limit: at GRID's native 360x288 halved to 180x144, RivaGAN on a 216x172 working "
    "copy leaves 1-6 of 32 bits wrong depending on clip and payload (content-driven errors "
    "repeat in every frame, so voting cannot fix them); see the module docstring"))
def test_detects_after_crf23_and_half_size(files: dict[str, object]) -> None:
    tmp = Path(files["dir"])  # type: ignore[arg-type]
    detector = WatermarkDetector()
    found = detector.detect_file(tmp / "a_half.mp4", max_frames=10)
    assert found.frames_used == 10
    assert errors(found, PAYLOAD_A) <= 3, found
    assert found.closest(ISSUED) == PAYLOAD_A
    assert found.bit_agreement >= 0.9


def test_two_payloads_told_apart(files: dict[str, object]) -> None:
    tmp = Path(files["dir"])  # type: ignore[arg-type]
    found = WatermarkDetector().detect_file(tmp / "b_half.mp4", max_frames=10)
    assert found.closest(ISSUED) == PAYLOAD_B
    assert errors(found, PAYLOAD_B) <= 3
    assert errors(found, PAYLOAD_A) >= 10


def test_unmarked_clip_is_not_found() -> None:
    found = WatermarkDetector().detect_file(UNMARKED, max_frames=10)
    assert found.payload is None
    assert found.confidence < wm.CONFIDENCE_THRESHOLD
    assert found.closest(ISSUED) is None


def test_still_image_survives_jpeg() -> None:
    rgb = cv2.cvtColor(cv2.imread(str(MEDIA / "astronaut.png")), cv2.COLOR_BGR2RGB)
    marked = WatermarkEmbedder(PAYLOAD_B).mark(rgb, 0)
    assert psnr(rgb, marked) >= 38.0
    assert int(np.abs(marked.astype(int) - rgb.astype(int)).max()) <= 3
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(marked, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    received = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    found = WatermarkDetector().detect_frames([received])
    assert found.payload == PAYLOAD_B, found
    plain = WatermarkDetector().detect_frames([rgb])
    assert plain.payload is None


def test_key_frame_on_cut_and_cadence() -> None:
    rgb = cv2.cvtColor(cv2.imread(str(MEDIA / "astronaut.png")), cv2.COLOR_BGR2RGB)
    other = np.ascontiguousarray(rgb[::-1])  # a "cut": a different picture, same size
    embedder = WatermarkEmbedder(PAYLOAD_A, cadence=10)
    for i in range(8):
        embedder.mark(rgb, i)
    assert embedder.key_frames == 1
    embedder.mark(other, 8)  # content change → new key frame before the cadence
    assert embedder.key_frames == 2
    for i in range(9, 18):
        embedder.mark(other, i)
    assert embedder.key_frames == 2
    embedder.mark(other, 18)  # cadence reached
    assert embedder.key_frames == 3


def test_mark_returns_new_frame_and_rejects_bad_input() -> None:
    frame = np.full((64, 96, 3), 128, np.uint8)
    marked = WatermarkEmbedder(1).mark(frame, 0)
    assert marked is not frame and marked.shape == frame.shape and marked.dtype == np.uint8
    assert np.all(frame == 128)
    with pytest.raises(ValueError):
        WatermarkEmbedder(1).mark(frame[:, :, 0], 0)
    with pytest.raises(ValueError):
        WatermarkEmbedder(1, strength=0)


def test_missing_model_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(wm.MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(WatermarkModelMissingError, match=r"rivagan_decoder\.onnx"):
        WatermarkDetector().detect_frames([np.zeros((64, 64, 3), np.uint8)])
