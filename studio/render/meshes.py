"""The face meshes a render warps are the ones its tracking recorded.

Step 2 records each analysed video's meshes as files in the job's staging folder
(``work/landmarks``, ``work/driver/landmarks``): shared storage that render workers on other
nodes read, and that whoever can write staging could change under a render (moved meshes
move the edit off the tracked face; swapped tracks move it onto another person). So:

- when tracking ends the head has the files' digest (``ShotAnalysis.landmarks_sha256``: the
  recorder's hashes of what it wrote, or a sealed cache entry's hashes) and copies the meshes
  once into a private folder of its own (memory-mapped from there: flat in the shot's
  length), checked against it (:func:`pin`); step 4 on the head renders from those copies,
  never from the staging files again;
- a render worker is sent the analysis without the meshes (:func:`unpinned`) and their digest
  in its registry-signed decision token (:func:`mesh_digests`); it copies and checks the
  files the same way, into its own private folder, before rendering (:func:`pinned`).

Meshes that differ are a refusal (``RenderWorkerError``): nothing is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final

from consent.errors import DecisionScopeError
from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.landmark_file import LandmarkDigestError
from studio.errors import RenderWorkerError
from studio.render.pipeline_step import PipelineWork

#: The names of the analysed videos in a decision token's ``meshes``.
SOURCE: Final = "source"
DRIVER: Final = "driver"


def pin(analysis: ShotAnalysis, digest: str | None = None, *, into: Path | None = None
        ) -> ShotAnalysis:
    """``analysis`` with its meshes checked against ``digest`` (default: the one recorded
    when it was tracked), held in memory or, with ``into``, as copies in that private folder
    (memory-mapped: flat in the shot's length); ``RenderWorkerError`` when the files
    differ."""
    try:
        return analysis.pinned(digest, into=into)
    except LandmarkDigestError as exc:
        raise RenderWorkerError(f"{exc}: changed in the job's staging folder? Nothing was "
                                "published") from None


def _analyses(work: PipelineWork) -> dict[str, ShotAnalysis]:
    found = {SOURCE: work.source, DRIVER: work.driver_analysis}
    return {name: a for name, a in found.items() if isinstance(a, ShotAnalysis)}


def mesh_digests(work: PipelineWork) -> dict[str, str]:
    """Each analysed video's meshes digest as recorded when it was tracked (for the
    token). An analysis without one is refused: its meshes could not be checked."""
    out = {}
    for name, analysis in _analyses(work).items():
        if not analysis.landmarks_sha256:
            raise RenderWorkerError(f"the {name}'s face meshes have no recorded digest: "
                                    "a worker could not check them")
        out[name] = analysis.landmarks_sha256
    return out


def unpinned(work: PipelineWork) -> PipelineWork:
    """``work`` without meshes held in memory: a worker reads and checks them itself (a
    task does not carry megabytes of meshes per chunk)."""
    analyses = {name: a.unpinned() for name, a in _analyses(work).items()}
    if not analyses:
        return work
    return replace(work, source=analyses.get(SOURCE, work.source),
                   driver_analysis=analyses.get(DRIVER, work.driver_analysis))


def pinned(work: PipelineWork, digests: Mapping[str, str], *, into: Path | None = None
           ) -> PipelineWork:
    """``work`` with every analysis's meshes read and checked against the signed
    ``digests`` (a worker's check: the token's, never the task's own); with ``into``, kept
    as copies in that private folder (``into/source``, ``into/driver``)."""
    checked = {}
    for name, analysis in _analyses(work).items():
        digest = digests.get(name)
        if not digest:
            raise DecisionScopeError(f"the decision token binds no face meshes of the {name}: "
                                     "the meshes in staging cannot be checked")
        checked[name] = pin(analysis, digest, into=None if into is None else into / name)
    if not checked:
        return work
    return replace(work, source=checked.get(SOURCE, work.source),
                   driver_analysis=checked.get(DRIVER, work.driver_analysis))
