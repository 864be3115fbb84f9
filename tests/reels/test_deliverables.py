"""Stems as deliverables of their own (issue 17): a reel rendered in French with an M&E
delivers, beside the review proxy, the master and the mix, ANA's dialogue stem and the M&E as
signed (C2PA embedded in the WAV, with ANA's shot as an ingredient and her grant as the
consent), ledgered outputs; stems and M&E sum to the mix; `studio reel status` and the Review
tab list them; the release refuses while one of them is gone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from consent.registry import Registry
from pipelines.media.audio import load_audio
from studio.errors import ReelHeldError
from studio.reels.reviews import Verdict
from studio.reels.store import ShotState
from studio.services import reel_review
from studio.services.context import AppContext

from .small_reel import SmallReel


@pytest.mark.slow
@pytest.mark.xdist_group("small-reel-with-m-and-e")
def test_stems_and_m_and_e_are_signed_ledgered_listed_and_held_by_the_release(
        small_reel: tuple[SmallReel, Registry], tmp_path: Path) -> None:
    from studio.provenance.identity import trust_anchors
    from studio.provenance.signing import read_manifest
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    # Rendered with the M&E (small_reel.m_and_e: a quiet 220 Hz tone the reel's length).
    rendered, registry = small_reel
    settings, reel, done = rendered.settings, rendered.reel, rendered.done
    assert rendered.m_and_e is not None
    ctx = AppContext(settings, registry)
    assert [s.state for s in done.shots] == [ShotState.RENDERED, ShotState.COPIED]
    items = {reel_review.deliverable_label(i): i for i in done.deliverables["items"]}
    assert set(items) == {"review", "master", "mix", "stem (ANA)", "m-and-e"}
    # Each its own ledgered publication, under the reel's one decision.
    assert len({i["output_ledger_index"] for i in items.values()}) == 5
    shot0 = done.shots[0].outcome["sha256"]
    grants = {g["grant_id"] for g in done.shots[0].outcome["decision"]["grants_used"]}

    anchors = trust_anchors(settings)
    for label in ("stem (ANA)", "m-and-e", "mix"):
        path = Path(items[label]["path"])
        assert path.parent == settings.outputs_dir and path.suffix == ".wav"
        manifest = read_manifest(path, trust_anchors_pem=anchors)  # embedded in the WAV
        assert manifest.consent is not None
        assert set(manifest.consent.grant_ids) == grants, label
        assert shot0 in {i.sha256 for i in manifest.ingredients}, label
        checked = verify_file(path, registry, ManifestStore(settings.manifests_dir),
                              trust_anchors_pem=anchors, watermark=False)
        assert checked.ok and checked.consent_now == "active", checked.to_json()
    stem_manifest = read_manifest(Path(items["stem (ANA)"]["path"]), trust_anchors_pem=anchors)
    assert "ANA" in str(stem_manifest.title)
    assert any(i.title == "dub dialogue stem" for i in stem_manifest.ingredients)

    # The stems and the M&E are the mix's parts: at its gain they sum to it (up to its
    # limiter and 16-bit PCM).
    parts = [load_audio(Path(items[k]["path"])) for k in ("stem (ANA)", "m-and-e")]
    whole = load_audio(Path(items["mix"]["path"]))
    assert all(p.rate == whole.rate == 48_000 for p in parts)
    assert all(p.samples.shape == whole.samples.shape for p in parts)
    residual = whole.samples - sum(p.samples for p in parts)
    error_db = 10 * np.log10(np.mean(residual ** 2) / np.mean(whole.samples ** 2))
    print(f"stems + M&E against the mix: residual {error_db:.1f} dB")
    assert error_db < -30

    # Listed by `studio reel status` and on the Review tab's deliverables table.
    from studio.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["--data", str(settings.data_dir), "reel", "status",
                                reel.reel_id])
    assert shown.exit_code == 0, shown.output
    assert "stem (ANA)" in shown.output and "m-and-e" in shown.output
    body = json.loads(runner.invoke(app, ["--data", str(settings.data_dir), "reel", "status",
                                          reel.reel_id, "--json"]).output)
    assert {(i["kind"], i["character"]) for i in body["jobs"][0]["deliverables"]["items"]} \
        >= {("stem", "ANA"), ("m-and-e", None)}
    review = reel_review.review_of(ctx, reel.reel_id, "fr")
    from studio.ui.review import deliverable_rows

    table = deliverable_rows(review, {})
    assert [r[0] for r in table] == ["review", "master", "mix", "stem (ANA)", "m-and-e"]

    # The release covers them: a stem gone holds the version; back in place, it goes.
    reel_review.decide(ctx, reel_review.ShotDecision(reel.reel_id, "fr", 0, Verdict.APPROVED,
                                                     "", "Rita Reviewer"))
    stem_file = Path(items["stem (ANA)"]["path"])
    aside = stem_file.rename(tmp_path / stem_file.name)
    with pytest.raises(ReelHeldError, match=r"stem \(ANA\)"):
        reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    aside.rename(stem_file)
    released = reel_review.publish(ctx, reel.reel_id, "fr", "Paula Producer")
    assert {reel_review.deliverable_label(i) for i in released.items} == set(items)
