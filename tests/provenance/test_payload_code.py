"""The watermark payload code: distance, error correction and what a chance read decodes to."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from studio.provenance import payload_code as pc
from studio.provenance.watermark import WHITENING, chase_decode, payload_bits


def test_every_pair_of_code_words_differs_in_eight_bits_or_more() -> None:
    words = pc.codebook()
    assert len(set(words.tolist())) == pc.SERIALS
    # Linear code: the minimum distance is the minimum weight of a non-zero word.
    weights = np.unpackbits(words[1:].view(np.uint8)).reshape(-1, 32).sum(axis=1)
    assert int(weights.min()) == pc.MIN_DISTANCE == 8


def test_encode_is_systematic_and_round_trips() -> None:
    for serial in (1, 2, 0x1234, 0xFFFE):
        word = pc.encode(serial)
        assert word >> 16 == serial and pc.is_codeword(word) and pc.serial_of(word) == serial
        assert pc.codebook()[serial] == word
    assert pc.encode(0) == 0 and pc.encode(0xFFFF) == 0xFFFFFFFF  # hence reserved
    for bad in (-1, 1 << 16, True):
        with pytest.raises(ValueError):
            pc.encode(bad)
    with pytest.raises(ValueError, match="not a watermark code word"):
        pc.serial_of(pc.encode(7) ^ 1)
    assert not pc.is_codeword(1 << 32) and not pc.is_codeword(-3)


def _logits_for(word: int, weak: dict[int, float] | None = None) -> np.ndarray:
    """Confident logits (±8) for ``word``'s bits, some replaced by given (weak) values."""
    signs = payload_bits(word ^ WHITENING) * 2 - 1
    logits = (signs * 8.0).astype(np.float32)
    for i, value in (weak or {}).items():
        logits[i] = value
    return logits


def test_chase_corrects_up_to_three_weak_bits_and_never_strong_ones() -> None:
    word = pc.encode(0xBEEF)
    signs = payload_bits(word ^ WHITENING) * 2 - 1
    # Three bits read wrong but weakly: corrected.
    wrong = {3: -0.5 * signs[3], 17: -1.0 * signs[17], 30: -0.2 * signs[30]}
    assert chase_decode(_logits_for(word, wrong)) == (word, 3)
    assert chase_decode(_logits_for(word)) == (word, 0)
    # One bit read wrong *confidently*: not among the weakest, so not decoded at all.
    strong = _logits_for(word, {5: -9.0 * signs[5]})
    assert chase_decode(strong) == (None, None)
    # Four weak errors: beyond the radius, no answer (and never a wrong code word).
    four = {i: -0.3 * signs[i] for i in (1, 9, 20, 28)}
    assert chase_decode(_logits_for(word, four))[0] in (None,)


def test_random_reads_decode_as_rarely_as_stated() -> None:
    # Reads with random signs and magnitudes: the bound is 42 / 65,536 ≈ 6.4e-4.
    rng = np.random.default_rng(11)
    trials = 5_000
    hits = sum(chase_decode(rng.normal(0, 5, 32).astype(np.float32))[0] is not None
               for _ in range(trials))
    assert hits / trials < 3e-3, hits


def test_issued_payloads_are_code_words(tmp_path: object) -> None:
    from pathlib import Path

    from studio.provenance.store import ManifestStore

    store = ManifestStore(Path(str(tmp_path)) / "store")
    rng = random.Random(4)
    issued = [store.allocate_payload(rng) for _ in range(20)]
    assert all(pc.is_codeword(p) for p in issued)
    assert len(set(issued)) == 20
    # Any two issued payloads are ≥ 8 bits apart: a few wrong bits never swap them.
    assert min(bin(a ^ b).count("1") for a, b in itertools.combinations(issued, 2)) >= 8
