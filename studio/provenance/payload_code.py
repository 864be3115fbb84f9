"""The watermark's 32 bits as a code word: a 16-bit serial protected by 16 check bits.

Why a code: RivaGAN's decoder answers *some* 32 bits on any picture, and on a static
unmarked picture it answers the same bits in every frame (an ffmpeg ``testsrc`` clip read as
a confident "payload 47076667"). Agreement between frames cannot tell that apart from a
mark. A code can: only 2**16 of the 2**32 words are ever embedded, so an unmarked read lands
on a code word by chance with probability 2**-16, and a marked read that lost a few bits to
compression is still nearest to the word it carried.

The code is the extended binary BCH code of length 32 and dimension 16 (BCH(31, 16) with
designed distance 7, generator ``m1·m3·m5`` over GF(32) built on x^5 + x^2 + 1, plus an
overall parity bit): any two code words differ in at least 8 bits
(``tests/provenance/test_payload_code.py`` checks it over all 65,536 words), so up to 3 wrong
bits still decode to the right serial and 4 can never decode to a wrong one on their own.
Encoding is systematic: the serial is the top 16 bits of the word, in the clear.

Decoding is soft and exhaustive: the decoder's mean logits are correlated with all 65,536
code words (a 65,536 × 32 matrix product, about a millisecond), so bits the decoder was
unsure of cost little when they are wrong. ``galois`` offers BCH codes but imports numba
(seconds of start-up for a verifier meant to answer in two); the generator below is one
15-degree polynomial.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

WORD_BITS = 32
SERIAL_BITS = 16
SERIALS = 1 << SERIAL_BITS
GENERATOR = 0x8FAF
"""g(x) = m1(x)·m3(x)·m5(x) = (x^5+x^2+1)(x^5+x^4+x^3+x^2+1)(x^5+x^4+x^2+x+1), degree 15."""
MIN_DISTANCE = 8
RESERVED_SERIALS = frozenset({0x0000, 0xFFFF})
"""Serials never issued: they encode to the all-zero and all-one words, which a failed or
saturated decode tends to read."""


def _mod_generator(value: int) -> int:
    """Remainder of the polynomial ``value`` (bit i = coefficient of x^i) divided by g(x)."""
    degree = GENERATOR.bit_length() - 1
    while value.bit_length() - 1 >= degree:
        value ^= GENERATOR << (value.bit_length() - 1 - degree)
    return value


def encode(serial: int) -> int:
    """The 32-bit code word carrying ``serial`` (0 … 65535): serial, 15 BCH bits, parity."""
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial < SERIALS:
        raise ValueError(f"serial {serial!r} is not a {SERIAL_BITS}-bit unsigned integer")
    shifted = serial << 15
    word31 = shifted | _mod_generator(shifted)
    return (word31 << 1) | (word31.bit_count() & 1)


def serial_of(word: int) -> int:
    """The serial a code word carries (its top 16 bits); ``ValueError`` if not a code word."""
    if not is_codeword(word):
        raise ValueError(f"{word:#010x} is not a watermark code word")
    return word >> (WORD_BITS - SERIAL_BITS)


def is_codeword(word: int) -> bool:
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << WORD_BITS:
        return False
    return int(codebook()[word >> (WORD_BITS - SERIAL_BITS)]) == word


@functools.cache
def codebook() -> NDArray[np.uint32]:
    """All 65,536 code words, indexed by serial (built once from the generator's rows)."""
    # The code is linear: a word is the XOR of the words of the serial's set bits.
    rows = np.array([encode(1 << k) for k in range(SERIAL_BITS)], dtype=np.uint32)
    serials = np.arange(SERIALS, dtype=np.uint32)
    words = np.zeros(SERIALS, dtype=np.uint32)
    for k in range(SERIAL_BITS):
        words ^= np.where((serials >> np.uint32(k)) & np.uint32(1), rows[k], np.uint32(0))
    return words


def word_signs(words: NDArray[np.uint32]) -> NDArray[np.int8]:
    """``len(words) × 32`` matrix of ±1 (bit set → +1), most significant bit first."""
    shifts = np.arange(WORD_BITS - 1, -1, -1, dtype=np.uint32)
    bits = (words[:, None] >> shifts[None, :]) & np.uint32(1)
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)
