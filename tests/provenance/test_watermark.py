"""The RivaGAN video watermark on real media: GRID clips through H.264, and a still image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from pipelines.media import VideoReader, VideoWriter
from studio.provenance import payload_code
from studio.provenance import watermark as wm
from studio.provenance.watermark import (
    Detection,
    WatermarkDetector,
    WatermarkEmbedder,
    WatermarkModelMissingError,
    bits_payload,
    payload_bits,
)
from tests.media.mediagen import lavfi_frames

MEDIA = Path(__file__).resolve().parents[2] / "assets" / "media"
CLIP_A = MEDIA / "grid" / "brbk7n.mpg"
CLIP_B = MEDIA / "grid" / "id2_vcd_swwp2s.mpg"
UNMARKED = MEDIA / "grid" / "bbaf2n.mpg"
# Payloads are code words (payload_code), as ManifestStore.allocate_payload issues them.
PAYLOAD_A = payload_code.encode(0x00C0)
PAYLOAD_B = payload_code.encode(0x1234)  # 12 bits from PAYLOAD_A
ISSUED = [PAYLOAD_A, PAYLOAD_B, payload_code.encode(1), payload_code.encode(0x0BAD)]
# The tests that share a module-scoped fixture run on one xdist worker, which builds it once
# (under --dist loadgroup ungrouped tests are spread, and each worker would build its own).
GRID_MARKED = pytest.mark.xdist_group("watermark-grid-marked")  # ``files``
OUTPUT_720P = pytest.mark.xdist_group("watermark-720p")  # ``marked_720p``, ``unmarked_read``


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


@GRID_MARKED
def test_psnr_of_marked_frames(files: dict[str, object]) -> None:
    # The bound is structural (|change| ≤ 3 levels ⇒ ≥ 38.6 dB); check the real figure.
    assert float(files["psnr_a"]) >= 38.0  # type: ignore[arg-type]
    assert float(files["psnr_b"]) >= 38.0  # type: ignore[arg-type]


@GRID_MARKED
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


@GRID_MARKED
def test_two_payloads_told_apart(files: dict[str, object]) -> None:
    tmp = Path(files["dir"])  # type: ignore[arg-type]
    found = WatermarkDetector().detect_file(tmp / "b_half.mp4", max_frames=10)
    # At half of GRID's native size the read keeps a few wrong bits (the xfail above), too
    # many to decode on its own; against the issued words it is still unambiguous.
    assert found.closest(ISSUED) == PAYLOAD_B
    assert errors(found, PAYLOAD_B) <= 4
    assert errors(found, PAYLOAD_A) >= 8


@pytest.fixture(scope="module")
def unmarked_read() -> Detection:
    """The blind read of the unmarked GRID clip as verify reads a file (``detect_file``'s
    default frame cap; the sequential test gives up after 4 frames whatever the cap), read
    once for the tests that need it."""
    return WatermarkDetector().detect_file(UNMARKED)


@OUTPUT_720P
def test_unmarked_clip_is_not_found(unmarked_read: Detection) -> None:
    found = unmarked_read
    assert found.payload is None and not found.found
    assert found.closest(ISSUED) is None
    assert found.frames_used <= wm.GIVE_UP_AFTER  # the sequential test gave up early


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


# -- false "found" (issue 14, failure 5) ---------------------------------------------------

SMALL_CORPUS_LAVFI = [
    "testsrc", "testsrc2", "smptebars", "pal75bars", "rgbtestsrc", "zoneplate", "mandelbrot",
    "cellauto", "life=mold=10:ratio=0.1", "gradients", "sierpinski", "color=c=gray",
    "color=c=navy|noise=alls=30:allf=t+u", "testsrc|hue=H=t",
]


def _h264(frames: list[np.ndarray], path: Path, crf: int) -> Path:
    h, w = (d // 2 * 2 for d in frames[0].shape[:2])
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(
                np.ascontiguousarray(f[:h, :w]), format="rgb24")))
        out.mux(stream.encode(None))
    return path


def test_ffmpeg_testsrc_is_not_found(tmp_path: Path) -> None:
    """The issue's case: a 640×360 testsrc clip read as 'payload 47076667, confidence 0.66'."""
    clip = _h264(lavfi_frames("testsrc", (640, 360), 75), tmp_path / "testsrc.mp4", 23)
    found = WatermarkDetector().detect_file(clip)
    assert found.payload is None and found.closest(ISSUED) is None, found
    assert found.frames_used <= wm.GIVE_UP_AFTER


@pytest.mark.slow
def test_no_false_found_on_a_varied_unmarked_corpus(tmp_path: Path) -> None:
    """Eleven unmarked clips (every other synthetic pattern, at two sizes and CRFs, three GRID
    re-encodes, a panned photograph): no payload reported on any. Each unmarked clip is read
    to the detector's frame cap (it never settles early), so the suite keeps a sample; the
    208-file run is ``bench/watermark.py --false-positives``."""
    clips: list[Path] = []
    for i, graph in enumerate(SMALL_CORPUS_LAVFI[::2]):
        size, crf = ((320, 240), 20) if i % 2 else ((480, 270), 32)
        name = "".join(c if c.isalnum() else "_" for c in graph)
        clips.append(_h264(lavfi_frames(graph, size, 12), tmp_path / f"{name}.mp4", crf))
    for clip in sorted(MEDIA.glob("grid/*.mpg"))[::2]:
        with av.open(str(clip)) as c:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(20), c.decode(video=0),
                                                                     strict=False)]
        scale = 0.5 if len(clips) % 2 else 1.5
        size = (int(360 * scale) // 2 * 2, int(288 * scale) // 2 * 2)
        clips.append(_h264([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames],
                           tmp_path / f"{clip.stem}.mp4", 28))
    still = cv2.cvtColor(cv2.imread(str(MEDIA / "astronaut.png")), cv2.COLOR_BGR2RGB)
    for size in ((640, 360),):
        pan = [cv2.resize(still[8 * i:8 * i + 384, 40:472], size, interpolation=cv2.INTER_AREA)
               for i in range(12)]
        clips.append(_h264(pan, tmp_path / f"pan_{size[0]}.mp4", 23))
    assert len(clips) >= 10
    detector = WatermarkDetector()
    found = {c.name: d.payload for c in clips
             if (d := detector.detect_file(c)).payload is not None}
    assert found == {}


# -- robustness: crop and bars -------------------------------------------------------------


def _to_720p(frame: np.ndarray) -> np.ndarray:
    scaled = cv2.resize(frame, (900, 720), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(cv2.copyMakeBorder(scaled, 0, 0, 190, 190,
                                                   cv2.BORDER_REPLICATE))


def _bars(frame: np.ndarray, fraction: float, *, vertical: bool) -> np.ndarray:
    """The picture squeezed into (1 − fraction) of the height (letterbox) or width
    (pillarbox), black bars around it, the frame size unchanged."""
    h, w = frame.shape[:2]
    out = np.zeros_like(frame)
    if vertical:
        inner = int(h * (1 - fraction)) // 2 * 2
        top = (h - inner) // 2
        out[top:top + inner] = cv2.resize(frame, (w, inner), interpolation=cv2.INTER_AREA)
    else:
        inner = int(w * (1 - fraction)) // 2 * 2
        left = (w - inner) // 2
        out[:, left:left + inner] = cv2.resize(frame, (inner, h), interpolation=cv2.INTER_AREA)
    return out


@pytest.fixture(scope="module")
def master_720p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 720p studio-like output (GRID bbaf2n upscaled, as in bench/watermark.py), marked
    with PAYLOAD_A and encoded at CRF 18. (On brbk7n the letterboxed copy keeps 4 wrong bits
    with this payload: 5 of the 6 clip × bars cases measured are found, see the module
    docstring of studio.provenance.watermark.)"""
    tmp = tmp_path_factory.mktemp("wm720")
    with av.open(str(UNMARKED)) as c:  # bbaf2n, the demo performer
        frames = [_to_720p(f.to_ndarray(format="rgb24"))
                  for _, f in zip(range(40), c.decode(video=0), strict=False)]
    embedder = WatermarkEmbedder(PAYLOAD_A)
    return _h264([embedder.mark(f, i) for i, f in enumerate(frames)], tmp / "m.mp4", 18)


@pytest.fixture(scope="module")
def marked_720p(master_720p: Path) -> list[np.ndarray]:
    """The 720p output decoded back: what a platform receives."""
    with av.open(str(master_720p)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@OUTPUT_720P
@pytest.mark.slow
@pytest.mark.parametrize("vertical", [True, False], ids=["letterbox", "pillarbox"])
def test_found_through_ten_percent_bars(marked_720p: list[np.ndarray], tmp_path: Path,
                                        vertical: bool) -> None:
    boxed = _h264([_bars(f, 0.10, vertical=vertical) for f in marked_720p],
                  tmp_path / "boxed.mp4", 23)
    found = WatermarkDetector().detect_file(boxed)
    assert found.payload == PAYLOAD_A, found
    assert found.frames_used <= 4  # settled early by the sequential test


def test_black_bars_are_stripped_and_dark_pictures_left_alone() -> None:
    picture = np.full((360, 640, 3), 120, np.uint8)
    boxed = _bars(picture, 0.10, vertical=True)
    inner = wm.strip_black_bars(boxed)
    assert inner.shape[0] in range(322, 326) and inner.shape[1] == 640
    assert wm.strip_black_bars(_bars(picture, 0.10, vertical=False)).shape[1] in range(574, 578)
    dark_edge = picture.copy()
    dark_edge[:6] = 0  # 1.7 % of the height: part of the picture, not a bar
    assert wm.strip_black_bars(dark_edge).shape == picture.shape
    black = np.zeros_like(picture)
    assert wm.strip_black_bars(black) is black


def _centre_crop(frame: np.ndarray, fraction: float) -> np.ndarray:
    h, w = frame.shape[:2]
    ch, cw = int(h * fraction) // 2 * 2, int(w * fraction) // 2 * 2
    y, x = (h - ch) // 2, (w - cw) // 2
    return frame[y:y + ch, x:x + cw]


@pytest.fixture(scope="module")
def centre_crop(marked_720p: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, Detection]:
    """An 80 % centre crop of the 720p output re-encoded at CRF 23, and its blind read."""
    cropped = _h264([_centre_crop(f, 0.8) for f in marked_720p],
                    tmp_path_factory.mktemp("wm-crop") / "crop.mp4", 23)
    return cropped, WatermarkDetector().detect_file(cropped)


@OUTPUT_720P
@pytest.mark.slow
def test_eighty_percent_centre_crop_leads_verify_to_the_stored_output(
        master_720p: Path, centre_crop: tuple[Path, Detection], unmarked_read: Detection,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: an 80 % centre crop, re-encoded, leads ``verify`` back to the output it was
    cut from. The blind read keeps 4-7 wrong bits (the xfail below); verify reads again under
    crop hypotheses and names, among the stored outputs whose frames look like the copy, the
    payload that correlates best, then confirms it by frame hashes. The store holds the
    output, a look-alike render of the same shot with another payload, and 300 unrelated
    outputs."""
    from studio.provenance import verify
    from studio.provenance.store import STORED_CROPS, ManifestStore, frame_hashes_of

    cropped, detection = centre_crop
    # The frames the crop was cut from, hashed as the store keeps an output's.
    stored = frame_hashes_of(master_720p, crops=STORED_CROPS)
    store = ManifestStore(tmp_path / "store")
    store.put("a" * 64, b"manifest", payload=PAYLOAD_A, frame_hashes=stored)
    store.put("b" * 64, b"manifest", payload=PAYLOAD_B, frame_hashes=stored)
    rng = np.random.default_rng(14)
    for k, serial in enumerate(rng.choice(np.arange(2, 0xFFFF), 300, replace=False)):
        payload = payload_code.encode(int(serial))
        if payload not in ISSUED:
            store.put(f"{k:064x}", b"manifest", payload=payload,
                      frame_hashes=[int(h) for h in rng.integers(0, 2**63, 10)])
    assert detection.payload in (None, PAYLOAD_A)  # the blind read never names a wrong one
    # verify's own crop reads are kept for the check of the correlation below (reading
    # them again would decode the same 8 frames a second time).
    reads_of: list[tuple[Path, dict[str, Any], dict[float, np.ndarray]]] = []

    def crop_reads(path: Path, **kwargs: Any) -> dict[float, np.ndarray]:
        reads = wm.crop_reads(path, **kwargs)
        reads_of.append((path, kwargs, reads))
        return reads

    monkeypatch.setattr(verify, "crop_reads", crop_reads)
    recovery = verify._recover(cropped, detection, store, None)
    assert recovery is not None and recovery.original_sha256 == "a" * 64, recovery
    # Confirmed by the stored centre hashes (measured 0-0.6 of 64 bits; the whole-frame
    # hashes are 8-17 bits away on GRID-based outputs, against a limit of 12).
    assert recovery.distance <= 2.0
    # The correlation behind it, as verify computed it (crop_reads(cropped, known={1.0:
    # the blind read's mean logits})), and the crop it points to.
    ((read_path, asked, reads),) = reads_of
    assert read_path == cropped and set(asked) == {"known"} and set(asked["known"]) == {1.0}
    assert np.array_equal(asked["known"][1.0], detection.mean_logits)
    named = wm.best_issued(reads, [PAYLOAD_A, PAYLOAD_B])
    assert named is not None and named.payload == PAYLOAD_A and named.crop == 0.8, named
    # An uncropped copy of a different clip leads nowhere.
    assert verify._recover(UNMARKED, unmarked_read, store, None) is None


def test_unmarked_clip_names_no_issued_payload() -> None:
    rng = np.random.default_rng(15)
    issued = ISSUED + [payload_code.encode(int(s)) for s in rng.choice(np.arange(2, 0xFFFF),
                                                                       300, replace=False)]
    assert wm.match_issued(UNMARKED, issued) is None
    assert wm.match_issued(UNMARKED, []) is None


@OUTPUT_720P
@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "known limit: read blind (no list of issued payloads), an 80 % centre crop of a "
    "GRID-based 720p output, re-encoded, keeps 4-7 of 32 bits wrong even at the crop's own "
    "scale (0.8): the decoder's attention read some bits in the lost border; beyond the "
    "code's 3 weak-bit corrections. verify names the payload by correlation among look-alike "
    "stored outputs instead (the test above)"))
def test_found_blind_after_an_eighty_percent_centre_crop(
        centre_crop: tuple[Path, Detection]) -> None:
    _, found = centre_crop  # WatermarkDetector().detect_file of the crop
    assert found.payload == PAYLOAD_A, found


class _Declares:
    """Stands for a verify report whose own manifest declares ``payload``."""

    def __init__(self, payload: int) -> None:
        self.payload = payload

    def _expected_payload(self) -> int:
        return self.payload


@GRID_MARKED
def test_verify_confirms_the_declared_payload_with_a_longer_vote(
        files: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick sequential read can stop short on a small re-encoded picture; when the
    file's own manifest declares a payload, verify votes over more frames before it says
    "not found" — and a file that does not carry that payload stays "not found"."""
    from studio.provenance import verify

    marked = Path(str(files["dir"])) / "a.mp4"
    nothing = WatermarkDetector().decide(np.zeros((0, wm.PAYLOAD_BITS), np.float32))
    monkeypatch.setattr(WatermarkDetector, "detect_file", lambda self, path: nothing)
    confirmed = verify._detect(marked, _Declares(PAYLOAD_A))  # type: ignore[arg-type]
    assert confirmed.closest([PAYLOAD_A]) == PAYLOAD_A
    assert confirmed.frames_used > wm.MAX_FRAMES
    assert verify._detect(UNMARKED, _Declares(PAYLOAD_A)) is nothing  # type: ignore[arg-type]
