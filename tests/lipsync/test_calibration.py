"""The embedded backend's amplitude calibration (issue 16)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipelines.lipsync import SpeechDrive
from pipelines.lipsync.embedded import CALIBRATION_GAIN, calibrated
from pipelines.lipsync.model import OPEN_VOWEL_JAW


def test_calibrated_lifts_loud_syllables_to_the_open_vowel_target(drive_b: SpeechDrive
                                                                   ) -> None:
    out = calibrated(drive_b)
    jaw, before = out.shapes[:, 0], drive_b.shapes[:, 0]
    voiced = before > 0.05
    gain = float(np.median(jaw[voiced] / before[voiced]))
    assert CALIBRATION_GAIN[0] <= gain <= CALIBRATION_GAIN[1]
    assert abs(np.percentile(jaw[voiced], 95) - OPEN_VOWEL_JAW) < 0.02 or \
        gain in CALIBRATION_GAIN
    np.testing.assert_array_equal(out.shapes[:, 1:], drive_b.shapes[:, 1:])  # closure etc.
    assert (jaw[~voiced] <= before[~voiced] * CALIBRATION_GAIN[1] + 1e-9).all()
    assert jaw.max() <= 1.0


def test_a_silent_drive_is_left_alone(drive_b: SpeechDrive) -> None:
    silent = replace(drive_b, shapes=np.zeros_like(drive_b.shapes))
    assert calibrated(silent) is silent
