"""The Reenact tab and motion files: the check and the render both hold the registry's seal.

A motion file the studio's registry issued passes the tab's consent check; the same file with
its identity embeddings edited is refused, by the check and by the render job, with the
reason (never an internal error).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from consent.fields import Channel
from pipelines.faces.analysis import analyse_shot
from pipelines.reenact import extract_motion
from studio.identity import embedder_for, sha256_file
from studio.jobs import JobStatus
from studio.motion_seals import issue_motion_file
from studio.ui.handlers import Handlers, Studio

from .conftest import DEMO_SHOT, as_user, uploaded


def _issue(studio: Studio, folder: Path) -> Path:
    settings, registry = studio.settings, studio.registry
    embedder = embedder_for(settings)
    motion = extract_motion(analyse_shot(DEMO_SHOT, folder / "driver", embedder),
                            neutral_frame="rest", embedder=embedder.name,
                            video_sha256=sha256_file(DEMO_SHOT))
    issued = issue_motion_file(registry, settings, motion, folder / "take.motion.npz",
                               project_id="demo-dub", language="en", territory="FR",
                               channel=Channel.STREAMING, operator="Otto")
    assert issued.path is not None
    return issued.path


@pytest.mark.slow
def test_the_reenact_tab_holds_motion_files_to_their_seal(
        h: Handlers, studio: Studio, upload_root: Path, tmp_path: Path) -> None:
    otto = as_user("otto")
    good = _issue(studio, tmp_path)
    with np.load(good) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["embeddings"] = arrays["embeddings"][::-1].copy()
    forged = tmp_path / "forged.motion.npz"
    np.savez(forged, **arrays)  # type: ignore[arg-type]

    draft, *_ = h.scan_reenact_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    verdict, _rules = h.check_reenact(draft, "demo-dub", "en", "FR", "streaming", ["t1"], None,
                                      uploaded(upload_root, good, "take.motion.npz"),
                                      request=otto)
    assert verdict.startswith("**ALLOW**")
    with pytest.raises(gr.Error, match="differ from what the registry sealed"):
        h.check_reenact(draft, "demo-dub", "en", "FR", "streaming", ["t1"], None,
                        uploaded(upload_root, forged, "forged.motion.npz"), request=otto)
    job_id, _html = h.render_reenact(draft, None,
                                     uploaded(upload_root, forged, "forged.motion.npz"),
                                     "demo-dub", "en", "FR", "streaming", ["t1"], "",
                                     request=otto)
    record = studio.jobs.wait(job_id, timeout=180)
    assert record.status is JobStatus.FAILED
    assert record.error and "differ from what the registry sealed" in record.error
