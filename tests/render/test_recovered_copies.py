"""A stripped copy recovered through its watermark is not the published file.

Frame hashes are perceptual: a copy whose second face was replaced by another person's still
matches them (mean distance ~2-6 of 64 bits, the limit is 12), and `verify` used to call it
"published" with consent "active". The ledger names the original; the copy reads
"original published" and never verifies.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consent.registry import Registry
from studio.provenance.store import ManifestStore
from studio.provenance.verify import verify_file
from studio.render import RenderJob, RenderRequest
from studio.settings import Settings
from tests.consent_guard import shots
from tests.media.mediagen import write_video

from .conftest import DEMO_SHOT, OTHER_VOICE

pytestmark = pytest.mark.slow


def test_an_edited_stripped_copy_is_not_published(settings: Settings, registry: Registry,
                                                  tmp_path: Path) -> None:
    outcome = RenderJob(RenderRequest(
        operation="lipsync", source=DEMO_SHOT, project_id="demo-dub", language="fr",
        territory="FR", operator="Op", dub=OTHER_VOICE), settings, registry).run()
    store = ManifestStore(settings.manifests_dir)
    own = verify_file(outcome.output, registry, store, trust_anchors_pem=None, watermark=False)
    assert own.publication == "published"

    frames, other = shots.frames_of(outcome.output), shots.frames_of(shots.STRANGER)
    for i, f in enumerate(frames):  # the lower right of the picture: another person's face
        f[130:250, 200:330] = other[i][130:250, 130:260]
    copy = write_video(tmp_path / "copy.mp4", frames, rate=25, options={"crf": "18"})
    found = verify_file(copy, registry, store, trust_anchors_pem=None)
    assert found.recovered is not None and found.recovered.matched, found.to_json()
    assert found.provenance == "Recovered"
    assert found.publication == "original published"
    assert found.to_json()["published"] is False and not found.ok
    assert "may have been edited" in found.recovered.note
