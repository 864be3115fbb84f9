"""A render under a grant that requires the performer's approval is published *held*: its
job record, its manifest and ``studio verify`` say so, until the performer's signed approval
is imported (issue 17). One demo render (a few seconds on two cores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from consent.approval import approval_draft
from consent.documents import Grant, OutputApproval, sign_draft
from consent.fields import ApprovalDecision
from consent.keys import PrivateKey
from consent.registry import Registry
from studio.provenance.identity import trust_anchors
from studio.provenance.store import ManifestStore
from studio.provenance.verify import verify_file
from studio.render import RenderJob, RenderRequest
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE, ROOT

DEMO = ROOT / "assets" / "demo"
GRANT = "demo-grant-approval"

pytestmark = pytest.mark.slow


def _held_grant(registry: Registry) -> PrivateKey:
    """Replace the demo grant with one that requires approval; return the demo key."""
    key = PrivateKey.load(DEMO / "demo-performer.key", b"demo-passphrase-public")
    draft = yaml.safe_load((DEMO / "demo-grant.draft.yaml").read_text())
    draft |= {"grant_id": GRANT, "approval": "required",
              "signed_at": "2026-11-30T00:00:00Z"}
    doc = sign_draft(Grant, json.loads(json.dumps(draft, default=str)), [key])
    assert registry.import_grant(doc.raw, officer="Olga").status == "active"
    registry.revoke_grant("demo-grant-0001", reason="Replaced by a grant with approval.",
                          officer="Olga", performer_request_reference="test")
    return key


def test_a_held_render_until_the_performer_approves(settings: Settings,
                                                    registry: Registry) -> None:
    key = _held_grant(registry)
    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator="Test Operator", dub=OTHER_VOICE)
    outcome = RenderJob(request, settings, registry).run()
    assert [g.grant_id for g in outcome.decision.grants_used] == [GRANT]
    assert outcome.approval == "awaiting"
    record = json.loads((outcome.job_dir / "outcome.json").read_text())
    assert record["approval"] == "awaiting"

    def check() -> tuple[str, bool, tuple[str, ...]]:
        report = verify_file(outcome.output, registry, ManifestStore(settings.manifests_dir),
                             trust_anchors_pem=trust_anchors(settings) or None,
                             watermark=False)
        assert report.manifest is not None and report.manifest.consent is not None
        assert report.to_json()["badges"]["approval"] == report.approval_state
        return report.approval_state, report.ok, report.manifest.consent.approval_required

    assert check() == ("awaiting", False, (GRANT,))
    approval = sign_draft(OutputApproval, approval_draft(
        performer_id="demo-performer", grant_id=GRANT, output_sha256=outcome.output_sha256,
        decision=ApprovalDecision.APPROVED, signer_role="self", signer_name="Demo Performer",
        signed_at=datetime.now(UTC)), [key])
    assert registry.import_approval(approval.raw, officer="Olga").deliverable
    assert check() == ("approved", True, (GRANT,))


def test_an_unheld_render_says_not_required(settings: Settings, registry: Registry,
                                            tmp_path: Path) -> None:
    """The demo grant (schema 1) holds nothing: the manifest names no approval."""
    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator="Test Operator", dub=OTHER_VOICE,
                            output_name="unheld.mp4")
    outcome = RenderJob(request, settings, registry).run()
    assert outcome.approval == "not_required"
    report = verify_file(outcome.output, registry, ManifestStore(settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(settings) or None, watermark=False)
    assert report.approval_state == "not_required" and report.ok
    assert report.manifest is not None and report.manifest.consent is not None
    assert report.manifest.consent.approval_required == ()
    assert "approval" not in report.manifest.consent.to_json()
