"""Face thumbnails of a scanned shot or still show the face (issue 15: a crop of the
forehead was shown): square, centred on the face, in a gallery that does not stretch them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.faces.scan import faces_in_image
from studio.ui.handlers import Studio, _crop, _still_with_thumbnail, scan_with_thumbnails

from .conftest import DEMO_SHOT, ROOT

STILL = ROOT / "assets" / "media" / "astronaut.png"


def _face_centre(thumb: np.ndarray) -> tuple[float, float]:
    (face,) = faces_in_image(np.ascontiguousarray(thumb), max_faces=1)
    x, y = face.center
    return x / thumb.shape[1], y / thumb.shape[0]


def test_a_crop_is_square_and_centred_on_the_box_even_at_the_frame_edge() -> None:
    frame = np.zeros((288, 360, 3), np.uint8)
    frame[10:60, 300:350] = 255  # a "face" near the top right corner
    thumb = _crop(frame, (300, 10, 350, 60))
    assert thumb.shape == (160, 160, 3)
    white = np.argwhere(thumb[..., 0] > 128)
    centre = white.mean(axis=0) / 160
    assert np.allclose(centre, 0.5, atol=0.05)


def test_the_shot_and_still_thumbnails_show_the_face(studio: Studio) -> None:
    _result, thumbs = scan_with_thumbnails(DEMO_SHOT, studio.registry, studio.settings)
    (thumb,) = thumbs.values()
    assert thumb.shape == (160, 160, 3)
    cx, cy = _face_centre(thumb)
    assert abs(cx - 0.5) < 0.1 and abs(cy - 0.5) < 0.1
    # The scan kept its analysis: a second scan reuses it and draws the same thumbnails from
    # the kept meshes.
    again, kept = scan_with_thumbnails(DEMO_SHOT, studio.registry, studio.settings)
    assert kept.keys() == thumbs.keys() and again.track_ids == _result.track_ids
    assert np.abs(kept[next(iter(kept))].astype(int) - thumb.astype(int)).mean() < 2
    _result, thumbs = _still_with_thumbnail(STILL, studio.registry, studio.settings)
    (thumb,) = thumbs.values()
    cx, cy = _face_centre(thumb)
    assert abs(cx - 0.5) < 0.1 and abs(cy - 0.5) < 0.1


def test_the_galleries_keep_their_columns() -> None:
    source = (ROOT / "studio" / "ui" / "app.py").read_text(encoding="utf-8")
    assert source.count("gr.Gallery(") == source.count("fit_columns=False") == 3
    assert Path(STILL).is_file()
