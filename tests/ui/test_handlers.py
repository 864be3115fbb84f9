"""The studio's handlers without a browser: every role check, the consent desk, renders."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from consent.documents import Grant, sign_draft
from consent.keys import PrivateKey
from studio.accounts import Role
from studio.jobs import JobStatus
from studio.ui.handlers import Handlers, Studio
from tests.factory import grant_draft

from .conftest import DEMO_GRANT, DEMO_SHOT, OTHER_VOICE, as_user, uploaded

# Which roles each handler admits (admin is always admitted).
MATRIX: dict[str, set[Role]] = {
    "whoami": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "landing": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "list_performers": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "list_grants": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "register_performer": {Role.CONSENT_OFFICER},
    "preview_faces": {Role.CONSENT_OFFICER},
    "enrol_face": {Role.CONSENT_OFFICER},
    "import_grant": {Role.CONSENT_OFFICER},
    "revoke_grant": {Role.CONSENT_OFFICER},
    "revocation_report": {Role.CONSENT_OFFICER, Role.AUDITOR},
    "scan_shot": {Role.OPERATOR},
    "scan_reenact_shot": {Role.OPERATOR},
    "check_consent": {Role.OPERATOR},
    "check_reenact": {Role.OPERATOR},
    "render_lipsync": {Role.OPERATOR},
    "render_reenact": {Role.OPERATOR},
    "job_status": {Role.OPERATOR, Role.AUDITOR},
    "cancel_job": {Role.OPERATOR},
    "list_jobs": {Role.OPERATOR, Role.AUDITOR},
    "jobs_cluster": {Role.OPERATOR, Role.AUDITOR},
    "jobs_opened": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "verify": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
    "ledger_latest": {Role.CONSENT_OFFICER, Role.AUDITOR},
    "ledger_sign_checkpoint": {Role.CONSENT_OFFICER, Role.AUDITOR},
    "ledger_search": {Role.CONSENT_OFFICER, Role.AUDITOR},
    "ledger_proof": {Role.CONSENT_OFFICER, Role.AUDITOR},
    "change_password": {Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR},
}
USERS = {Role.CONSENT_OFFICER: "olga", Role.OPERATOR: "otto", Role.AUDITOR: "aude",
         Role.ADMIN: "adam"}


def _call(h: Handlers, name: str, user: str | None) -> Any:
    method = getattr(h, name)
    params = [p for p in inspect.signature(method).parameters if p != "request"]
    return method(*([None] * len(params)), request=as_user(user))


def _refused(h: Handlers, name: str, user: str | None) -> str | None:
    """The refusal message, or None when the role check let the call through."""
    try:
        _call(h, name, user)
    except gr.Error as exc:
        message = str(exc.message)
        return message if message.startswith("Refused:") else None
    return None


def test_every_public_handler_is_in_the_role_matrix(h: Handlers) -> None:
    public = {n for n, m in inspect.getmembers(h, inspect.ismethod)
              if hasattr(m, "roles")}
    assert public == set(MATRIX)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_role_matrix(h: Handlers, name: str) -> None:
    for role, user in USERS.items():
        refusal = _refused(h, name, user)
        if role is Role.ADMIN or role in MATRIX[name]:
            assert refusal is None, f"{name} refused {role}: {refusal}"
        else:
            assert refusal is not None, f"{name} let {role} through"
            assert role.label in refusal
    assert _refused(h, name, None) == "Refused: you are not signed in"
    assert "no user" in (_refused(h, name, "mallory") or "")


def test_an_operator_cannot_import_a_grant(h: Handlers, upload_root: Path) -> None:
    grant = uploaded(upload_root, DEMO_GRANT, "grant.json")
    with pytest.raises(gr.Error, match="needs the consent officer role; you are signed in as "
                       r"otto \(operator\)"):
        h.import_grant(grant, request=as_user("otto"))


def test_an_auditor_cannot_render(h: Handlers, upload_root: Path) -> None:
    dub = uploaded(upload_root, OTHER_VOICE, "dub.mpg")
    with pytest.raises(gr.Error, match="Refused: this needs the operator role"):
        h.render_lipsync("shot-x", dub, None, None, "demo-dub", "fr", "FR", "streaming", "en",
                         ["t1"], "", request=as_user("aude"))
    assert h.studio.jobs.history() == []


def test_a_disabled_user_is_refused_at_the_next_click(h: Handlers, studio: Studio) -> None:
    assert "otto" in h.whoami(request=as_user("otto"))
    studio.accounts.set_disabled("otto")
    for name in MATRIX:
        assert _refused(h, name, "otto") == "Refused: the account otto is disabled"
    assert not studio.accounts.authenticate("otto", "operator-password-1").ok


def test_a_role_change_takes_effect_at_once(h: Handlers, studio: Studio) -> None:
    assert _refused(h, "import_grant", "otto") is not None
    studio.accounts.set_role("otto", Role.CONSENT_OFFICER)
    assert _refused(h, "import_grant", "otto") is None
    assert _refused(h, "render_lipsync", "otto") is not None


def test_the_consent_desk(h: Handlers, studio: Studio, upload_root: Path,
                          tmp_path: Path) -> None:
    key = PrivateKey.generate()
    pub = uploaded(upload_root, key.public_key.to_pem(), "ana.pub")
    olga = as_user("olga")
    message, performers = h.register_performer("perf-b", "Ana Pérez", "Ana", pub, request=olga)
    assert "Registered performer **perf-b**" in message
    assert performers[-1][:2] == ["perf-b", "Ana"] or any(r[0] == "perf-b" for r in performers)
    draft = grant_draft("perf-b", "grant-b", grantee={"projects": [{"project_id": "demo-dub",
                                                                      "title": "Demo"}]})
    raw = sign_draft(Grant, draft, [key]).raw
    message, grants = h.import_grant(uploaded(upload_root, raw, "grant-b.json"), request=olga)
    assert "Imported grant **grant-b**" in message and "active" in message
    assert any(r[0] == "grant-b" and r[2] == "active" for r in grants)
    # The same document twice is a conflict, said plainly.
    with pytest.raises(gr.Error, match="already imported"):
        h.import_grant(uploaded(upload_root, raw, "again.json"), request=olga)
    # A forged grant (one byte changed in the payload) is refused.
    forged = raw.replace(b"Ana", b"Anna") if b"Ana" in raw else raw.replace(b"perf-b", b"perf-c")
    with pytest.raises(gr.Error):
        h.import_grant(uploaded(upload_root, forged, "forged.json"), request=olga)
    with pytest.raises(gr.Error, match="required"):
        h.revoke_grant("grant-b", "", "", request=olga)
    message, grants = h.revoke_grant("grant-b", "withdrawn", "letter 1", request=olga)
    assert "Revoked grant **grant-b**" in message
    assert any(r[0] == "grant-b" and r[2] == "revoked" for r in grants)
    text, rows = h.revocation_report("grant-b", request=as_user("aude"))
    assert "**revoked**" in text and rows == []
    # The ledger search finds the grant's events.
    rows = h.ledger_search("grant", "grant-b", request=as_user("aude"))
    assert [r[1] for r in rows] == ["grant_imported", "revocation"]
    text, proof = h.ledger_proof(int(rows[0][0]), request=as_user("aude"))
    assert "verified" in text and Path(proof).is_file()
    # Handed out as a copy outside the data folder (Gradio's file route never serves it).
    assert not Path(proof).is_relative_to(studio.settings.data_dir)


def test_a_face_preview_and_enrolment(h: Handlers, upload_root: Path) -> None:
    ref = uploaded(upload_root, DEMO_SHOT, "reference.mpg")
    gallery, note = h.preview_faces([ref], request=as_user("olga"))
    assert gallery and "face(s) detected" in note
    assert gallery[0][0].ndim == 3
    text = h.enrol_face("demo-performer", [ref], request=as_user("olga"))
    assert "template(s) enrolled" in text


def test_operator_scans_checks_renders_and_others_are_kept_out(
        h: Handlers, studio: Studio, upload_root: Path) -> None:
    otto = as_user("otto")
    draft, gallery, update, text = h.scan_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"),
                                               request=otto)
    # The page shows the performer; the API takes the track id (README's example).
    assert update["choices"] == [("t1 (demo-performer)", "t1")]
    assert update["value"] == ["t1"]
    assert "demo-performer — consent on file" in gallery[0][1]
    assert "performer **demo-performer**" in text
    # The shot the operator uploaded sits in its own folder under the data folder.
    assert (studio.settings.data_dir / "uploads" / draft / "shot.mpg").is_file()
    # Another operator cannot use this shot.
    with pytest.raises(gr.Error, match="another user"):
        h.check_consent(draft, "demo-dub", "fr", "FR", "streaming", ["t1"], None,
                        request=as_user("opal"))
    verdict, rules = h.check_consent(draft, "demo-dub", "fr", "FR", "streaming",
                                     ["t1 (demo-performer)"], None, request=otto)
    assert verdict.startswith("**ALLOW**") and all(r[0] == "✔" for r in rules)
    denied, rules = h.check_consent(draft, "other-project", "fr", "FR", "streaming", ["t1"],
                                    None, request=otto)
    assert denied.startswith("**DENY**") and any(r[0] == "✘" for r in rules)

    dub = uploaded(upload_root, OTHER_VOICE, "dub.mpg")
    job_id, html = h.render_lipsync(draft, dub, None, None, "demo-dub", "fr", "FR",
                                    "streaming", "en", ["t1"], "ui-test.mp4", request=otto)
    assert 'data-status="queued"' in html or 'data-status="running"' in html
    record = studio.jobs.wait(job_id, timeout=120)
    assert record.status is JobStatus.DONE, record.error
    progress, text, video, download, rules = h.job_status(job_id, request=otto)
    assert 'data-status="done"' in progress and video == download
    assert "Rendered by **embedded-mesh**" in text and "Apache-2.0" in text
    assert video is not None and Path(video).name == "ui-test.mp4"
    # The requester's own copy, not the published file under the data folder.
    assert not Path(video).is_relative_to(studio.settings.data_dir)
    assert Path(video).read_bytes() == (studio.settings.outputs_dir / "ui-test.mp4").read_bytes()
    assert rules and all(r[0] == "✔" for r in rules)
    # Only the owner, auditors and admins see a job.
    with pytest.raises(gr.Error, match="another user"):
        h.job_status(job_id, request=as_user("opal"))
    assert h.job_status(job_id, request=as_user("aude"))[0] == progress
    assert [r[0] for r in h.list_jobs("mine", request=otto)] == [job_id]
    assert h.list_jobs("mine", request=as_user("opal")) == []
    with pytest.raises(gr.Error, match="only auditors and admins"):
        h.list_jobs("all users", request=as_user("opal"))
    assert [r[0] for r in h.list_jobs("all users", request=as_user("aude"))] == [job_id]
    # Opening the Jobs tab: the jobs and the cluster panel; a sentence for an officer.
    rows, cluster = h.jobs_opened("mine", request=otto)
    assert [r[0] for r in rows] == [job_id] and "STUDIO_EXECUTOR=local" in cluster
    assert h.jobs_opened("mine", request=as_user("olga")) == (
        [], "Render jobs and the render cluster are shown to operators, auditors and admins.")
    # Verify: consent active; after the officer revokes, revoked.
    badges, _text, report = h.verify(uploaded(upload_root, Path(video), "out.mp4"),
                                     request=otto)
    assert "consent active" in _plain(badges) and report["badges"]["consent"] == "active"
    assert "published published" in _plain(badges)
    assert report["badges"]["publication"] == "published" and report["published"] is True
    h.revoke_grant("demo-grant-0001", "withdrawn", "e-mail 7", request=as_user("olga"))
    badges, _text, report = h.verify(uploaded(upload_root, Path(video), "out.mp4"),
                                     request=as_user("aude"))
    assert "consent revoked" in _plain(badges) and report["badges"]["consent"] == "revoked"


def test_the_reenact_tab_reports_what_the_render_says(h: Handlers, studio: Studio,
                                                      upload_root: Path) -> None:
    otto = as_user("otto")
    draft, _gallery, _update, _text = h.scan_reenact_shot(
        uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    # The check asks about the driving performer too, as the render does.
    with pytest.raises(gr.Error, match="either a driving video or a motion file"):
        h.check_reenact(draft, "demo-dub", "en", "FR", "streaming", ["t1"], None, None,
                        request=otto)
    driver = uploaded(upload_root, DEMO_SHOT, "driver.mpg")
    verdict, rules = h.check_reenact(draft, "demo-dub", "en", "FR", "streaming", ["t1"],
                                     driver, None, request=otto)
    assert verdict.startswith("**ALLOW**")
    assert any(r[1] == "technique" and "performance_driving" in r[3] for r in rules), rules
    with pytest.raises(gr.Error, match="either a driving video or a motion file"):
        h.render_reenact(draft, None, None, "demo-dub", "en", "FR", "streaming", ["t1"], "",
                         request=otto)
    job_id, _html = h.render_reenact(draft, driver, None, "demo-dub", "en", "FR", "streaming",
                                     ["t1"], "", request=otto)
    record = studio.jobs.wait(job_id, timeout=180)
    # Whatever the reenactment backend does today (publish, or "not available yet"), the
    # job says it in words and never crashes the page.
    assert record.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.DENIED)
    if record.status is JobStatus.DONE:
        assert record.output is not None and Path(record.output).is_file()
    else:
        assert record.error and "internal error" not in record.error


def test_cancel_a_queued_job(h: Handlers, studio: Studio, upload_root: Path) -> None:
    otto = as_user("otto")
    draft, *_ = h.scan_shot(uploaded(upload_root, DEMO_SHOT, "shot.mpg"), request=otto)
    dub = uploaded(upload_root, OTHER_VOICE, "dub.mpg")
    first, _ = h.render_lipsync(draft, dub, None, None, "demo-dub", "fr", "FR", "streaming",
                                "en", ["t1"], "", request=otto)
    second, _ = h.render_lipsync(draft, dub, None, None, "demo-dub", "fr", "FR", "streaming",
                                 "en", ["t1"], "", request=otto)
    with pytest.raises(gr.Error, match="needs the operator role"):
        h.cancel_job(second, request=as_user("aude"))
    with pytest.raises(gr.Error, match="another user"):
        h.cancel_job(second, request=as_user("opal"))
    assert "Cancelling" in h.cancel_job(second, request=otto)
    assert studio.jobs.wait(second, timeout=120).status is JobStatus.CANCELLED
    assert studio.jobs.wait(first, timeout=120).status is JobStatus.DONE
    outputs = sorted(p.name for p in studio.settings.outputs_dir.iterdir()
                     if p.suffix == ".mp4")
    assert len(outputs) == 1


def _plain(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
