"""The manifest store: by output hash, by watermark payload, collisions decided by frames.

Real frames: perceptual hashes come from the GRID clip, a re-encoded (lower quality) copy of
it, and a different speaker's clip, so the distance thresholds are tested on what a stripped
copy looks like rather than on made-up integers.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

from studio.provenance import payload_code
from studio.provenance.certificates import LocalIdentity, create_local_identity
from studio.provenance.manifest import (
    AmbiguousMatchError,
    NoMatchError,
    StoreError,
    WatermarkBinding,
)
from studio.provenance.signing import NoManifestError, read_manifest, sign_file
from studio.provenance.store import (
    ManifestStore,
    difference_hash,
    frame_distance,
    frame_hashes_of,
    hamming,
)
from tests.provenance.test_c2pa import (
    GRID,
    make_inputs,
    make_mp4,
    make_png,
    make_wav,
    remux,
)

SHA_A, SHA_B, SHA_C = ("a" * 64, "b" * 64, "c" * 64)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "shot": make_mp4(GRID / "bbaf2n.mpg", d / "shot.mp4", crf=23),
        "copy": make_mp4(GRID / "bbaf2n.mpg", d / "copy.mp4", crf=40),  # a lossy re-encode
        "other": make_mp4(GRID / "lbax4n.mpg", d / "other.mp4", crf=23),
    }


@pytest.fixture(scope="module")
def hashes(clips: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    return {name: frame_hashes_of(path, samples=4) for name, path in clips.items()}


def test_difference_hash_survives_a_re_encode_and_tells_clips_apart(
        hashes: dict[str, tuple[int, ...]]) -> None:
    assert len(hashes["shot"]) == 4
    assert all(0 <= h < 1 << 64 for h in hashes["shot"])
    same = frame_distance(hashes["copy"], hashes["shot"])
    different = frame_distance(hashes["other"], hashes["shot"])
    assert same <= 6, same
    assert different >= 14, different
    assert hamming(0b1011, 0b0110) == 3
    with pytest.raises(ValueError, match="too small"):
        difference_hash(np.zeros((4, 4, 3), dtype=np.uint8))


def test_put_and_look_up_by_hash_and_payload(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path / "store")
    stored = store.put(SHA_A, b"manifest-a", payload=0x1234ABCD, frame_hashes=[1, 2, 3],
                       mime="video/mp4", title="a.mp4")
    assert stored.payload_hex == "1234abcd"
    assert (tmp_path / "store/by-hash" / f"{SHA_A}.c2pa").read_bytes() == b"manifest-a"
    record = json.loads((tmp_path / "store/by-hash" / f"{SHA_A}.json").read_text())
    assert record["payload"] == "1234abcd"
    assert record["frame_hashes"] == ["0000000000000001", "0000000000000002",
                                      "0000000000000003"]
    assert (tmp_path / "store/by-payload/1234abcd" / SHA_A).is_file()
    assert store.by_hash(SHA_A) == stored
    assert stored.manifest_bytes() == b"manifest-a"
    assert store.by_hash(SHA_B) is None
    assert store.by_payload(0x1234ABCD) == [stored]
    assert store.by_payload(0x0BADF00D) == []
    # re-storing under another payload moves the payload entry
    store.put(SHA_A, b"manifest-a", payload=0x0BADF00D)
    assert store.by_payload(0x1234ABCD) == []
    assert [s.sha256 for s in store.by_payload(0x0BADF00D)] == [SHA_A]
    # no temporary files left behind
    assert not [p for p in (tmp_path / "store").rglob(".*")]
    with pytest.raises(StoreError, match="SHA-256"):
        store.by_hash("../../etc/passwd")
    with pytest.raises(StoreError, match="32-bit"):
        store.by_payload(1 << 32)


def test_collisions_are_resolved_by_frames_or_refused(
        tmp_path: Path, hashes: dict[str, tuple[int, ...]]) -> None:
    store = ManifestStore(tmp_path / "store")
    payload = 0x00C0FFEE
    store.put(SHA_A, b"a", payload=payload, frame_hashes=hashes["shot"])
    store.put(SHA_B, b"b", payload=payload, frame_hashes=hashes["other"])
    assert {s.sha256 for s in store.by_payload(payload)} == {SHA_A, SHA_B}

    match = store.best_match(payload, hashes["copy"])  # the stripped, re-encoded copy
    assert match.manifest.sha256 == SHA_A
    assert match.runner_up is not None and match.runner_up > match.distance

    # a third output that looks like the first: no honest way to choose
    store.put(SHA_C, b"c", payload=payload, frame_hashes=hashes["copy"])
    with pytest.raises(AmbiguousMatchError, match="two look alike"):
        store.best_match(payload, hashes["shot"])
    # frames unlike any stored output, an unknown payload, no frames at all
    far = tuple(h ^ 0xFFFF_FFFF_0000_0000 for h in hashes["shot"])
    with pytest.raises(NoMatchError, match="not one of them"):
        store.best_match(payload, far)
    with pytest.raises(NoMatchError, match="no output"):
        store.best_match(0x0000_0001, hashes["shot"])
    with pytest.raises(NoMatchError, match="payload alone"):
        store.best_match(payload, ())


class _Rigged(random.Random):
    """Returns the given values first, then behaves like a seeded generator."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(7)
        self._values = values

    def getrandbits(self, k: int) -> int:
        return self._values.pop(0) if self._values else super().getrandbits(k)


def test_allocate_payload_skips_used_and_reserved(tmp_path: Path) -> None:
    # Payloads are code words of payload_code: the rng draws 16-bit serials.
    one, two, three = (payload_code.encode(s) for s in (0x1111, 0x2222, 0x3333))
    store = ManifestStore(tmp_path / "store")
    store.put(SHA_A, b"a", payload=one)
    rng = _Rigged([0x0000, 0xFFFF, 0x1111, 0x2222, 0x2222, 0x3333])
    assert store.allocate_payload(rng) == two
    assert store.allocate_payload(rng) == three  # two is reserved now
    assert store.payloads_in_use() == {one, two, three}
    assert store.by_payload(two) == []  # reserved, nothing stored yet


def test_a_stripped_copy_leads_back_to_its_manifest(
        tmp_path: Path, clips: dict[str, Path]) -> None:
    identity: LocalIdentity = create_local_identity(tmp_path / "keys")
    d = tmp_path / "media"
    d.mkdir()
    media = {"clip": clips["shot"], "ref": make_png(GRID / "bbaf2n.mpg", d / "ref.png"),
             "wav": make_wav(d / "dub.wav")}
    store = ManifestStore(tmp_path / "store")
    payload = store.allocate_payload(random.Random(3))
    inputs = dataclasses.replace(make_inputs(media), watermark=WatermarkBinding(payload, 1000))
    out = sign_file(clips["shot"], tmp_path / "out.mp4", inputs, identity.signing_identity())
    store.put(out.sha256, out.manifest_bytes, payload=payload,
              frame_hashes=frame_hashes_of(out.path, samples=4), mime=out.mime)

    stripped = remux(out.path, tmp_path / "stripped.mp4")  # metadata gone, frames kept
    with pytest.raises(NoManifestError):
        read_manifest(stripped)
    match = store.best_match(payload, frame_hashes_of(stripped, samples=4))
    assert match.manifest.sha256 == out.sha256
    assert store.by_hash(out.sha256) is not None
    # the stored manifest still validates against the original output
    report = read_manifest(out.path, trust_anchors_pem=identity.root_pem,
                           sidecar=match.manifest.manifest_path)
    assert report.state == "Trusted"
    assert report.soft_binding is not None and report.soft_binding.payload == payload
