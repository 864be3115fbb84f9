"""Still images: the frame size is checked from the header before any pixel is decoded.

A still is decoded whole (there is no streaming a PNG), so a 20 000 x 12 000 image would cost
gigabytes before anything could refuse it. The header says its size; anything over the same
pixel limit as a video frame is refused there, like :func:`pipelines.media.probe.probe` does.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from .errors import FrameTooLargeError, MediaNotFoundError, NotMediaError
from .probe import DEFAULT_MAX_PIXELS as STILL_MAX_PIXELS


def check_still(path: str | os.PathLike[str], *, max_pixels: int = STILL_MAX_PIXELS
                ) -> tuple[int, int]:
    """(width, height) of the image at ``path`` from its header, or the reason it is refused."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise MediaNotFoundError(p, "no such file")
    try:
        # Pillow's own decompression-bomb guard would warn or raise on the same images;
        # the size is judged here instead, with the studio's limit and message.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(p) as image:
                    width, height = image.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotMediaError(p, f"not a readable image ({exc})") from None
    if width <= 0 or height <= 0:
        raise NotMediaError(p, "the image does not state its size")
    if width * height > max_pixels:
        raise FrameTooLargeError(
            p, f"a {width}x{height} image ({width * height:,} pixels) exceeds the limit of "
               f"{max_pixels:,} pixels; refused before decoding")
    return width, height


def read_still(path: str | os.PathLike[str], *, max_pixels: int = STILL_MAX_PIXELS
               ) -> NDArray[np.uint8]:
    """The RGB pixels of a still, after :func:`check_still`."""
    check_still(path, max_pixels=max_pixels)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise NotMediaError(Path(path), "not a readable image")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
