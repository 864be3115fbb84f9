"""Every event of the studio UI (and of its API) as a plain function: testable without a browser.

Each handler is a method of :class:`Handlers` decorated with :func:`requires`, which reads
``request.username`` (Gradio's signed-in user), looks the user up in the database *at every
call* (a disabled account or a changed role takes effect at the next click) and refuses with
a :class:`gradio.Error` a person can read. Roles (admin may do everything):

================================  ======================================================
consent officer                   register performers, enrol faces, import grants, revoke
operator                          scan shots, check consent, render, cancel own jobs
auditor                           ledger, revocation reports, every user's job history
everyone signed in                list performers and grants, verify a file
================================  ======================================================

Nothing a user sends becomes a path: uploads go through :class:`UploadDesk` (content sniffed,
size-limited, copied under ``<data>/uploads/<request id>/``), ids are looked up, free text goes
into the ledger only as the registry validates it.
"""

from __future__ import annotations

import contextvars
import functools
import html
import inspect
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import gradio as gr
import numpy as np
from argon2 import PasswordHasher
from numpy.typing import NDArray
from pydantic import ValidationError

from consent.documents import format_validation_error
from consent.errors import ConsentError, NotFoundError
from consent.fields import Alteration, Channel, SignatoryRole, Technique
from consent.gate import AuthorizationRequest, Decision, Subject
from consent.keys import load_public_key, short_id
from consent.ledger import EventType, Ledger
from consent.merkle import MerkleError
from consent.registry import Registry, utc_now
from pipelines.media.errors import MediaError
from studio.accounts import AccessDenied, Accounts, Role, User
from studio.identity import IdentifyResult, embedder_for, identify_scan, sha256_file
from studio.jobs import JobManager, JobRecord, JobStatus
from studio.provenance.manifest import ProvenanceError
from studio.render import RenderRequest, RequestError
from studio.settings import Settings
from studio.ui.uploads import Kind, Upload, UploadDesk, UploadError, new_request_id

log = logging.getLogger(__name__)

OFFICER = (Role.CONSENT_OFFICER,)
OPERATOR = (Role.OPERATOR,)
AUDITOR = (Role.AUDITOR,)
EVERYONE = (Role.CONSENT_OFFICER, Role.OPERATOR, Role.AUDITOR)
LEDGER_READERS = (Role.AUDITOR, Role.CONSENT_OFFICER)
REPORT_READERS = (Role.AUDITOR, Role.CONSENT_OFFICER)

_current_user: contextvars.ContextVar[User | None] = contextvars.ContextVar(
    "studio_user", default=None)

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H", bound="Handlers")


def requires(*roles: Role) -> Callable[[Callable[Concatenate[H, P], R]],
                                       Callable[Concatenate[H, P], R]]:
    """Refuse the call unless the signed-in user (``request``) has one of ``roles`` now.

    Studio errors (registry refusals, bad uploads, bad requests) become a ``gr.Error`` with
    their message; anything else is logged and reported as an internal error.
    """

    def decorate(fn: Callable[Concatenate[H, P], R]) -> Callable[Concatenate[H, P], R]:
        signature = inspect.signature(fn)
        if "request" not in signature.parameters:
            raise TypeError(f"{fn.__name__} must take the gr.Request as 'request'")

        @functools.wraps(fn)
        def wrapper(self: H, /, *args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind_partial(self, *args, **kwargs)
            request = bound.arguments.get("request")
            username = getattr(request, "username", None)
            try:
                user = self.studio.accounts.authorize(username, roles)
            except AccessDenied as exc:
                raise gr.Error(f"Refused: {exc.message}", title="Not allowed",
                               print_exception=False) from None
            token = _current_user.set(user)
            try:
                return fn(self, *args, **kwargs)
            except gr.Error:
                raise
            except ValidationError as exc:
                raise gr.Error(format_validation_error("request", exc),
                               print_exception=False) from None
            except ConsentError as exc:
                raise gr.Error(exc.message, print_exception=False) from None
            except (UploadError, RequestError, MediaError, ProvenanceError, MerkleError,
                    ValueError) as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            except Exception as exc:
                log.exception("handler %s failed", fn.__name__)
                raise gr.Error(f"internal error ({type(exc).__name__}); see the studio log",
                               print_exception=False) from None
            finally:
                _current_user.reset(token)

        wrapper.roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def actor() -> User:
    """The user :func:`requires` admitted for the current call."""
    user = _current_user.get()
    if user is None:  # pragma: no cover - only reachable by calling outside a handler
        raise RuntimeError("no signed-in user in this context")
    return user


# ---------------------------------------------------------------------------- the studio


@dataclass
class Draft:
    """A shot uploaded and scanned, waiting for a consent check and a render."""

    draft_id: str
    username: str
    operation: str
    shot: Upload
    identity: IdentifyResult
    thumbnails: list[tuple[NDArray[np.uint8], str]] = field(default_factory=list)


class Studio:
    """What the handlers share: settings, registry, accounts, jobs, uploads, drafts."""

    def __init__(self, settings: Settings, registry: Registry, accounts: Accounts,
                 jobs: JobManager, uploads: UploadDesk) -> None:
        self.settings = settings
        self.registry = registry
        self.accounts = accounts
        self.jobs = jobs
        self.uploads = uploads
        self._drafts: OrderedDict[str, Draft] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, *, upload_roots: Sequence[Path] | None = None,
             registry: Registry | None = None, hasher: PasswordHasher | None = None) -> Studio:
        from studio.bootstrap import open_registry

        reg = registry or open_registry(settings)
        accounts = Accounts.open(reg.store, hasher=hasher)
        jobs = JobManager(settings, reg, reg.store)
        roots = list(upload_roots) if upload_roots is not None else [Path(gr.utils.
                                                                          get_upload_folder())]
        return cls(settings, reg, accounts, jobs, UploadDesk(settings.data_dir / "uploads",
                                                             roots))

    def keep(self, draft: Draft) -> None:
        with self._lock:
            self._drafts[draft.draft_id] = draft
            while len(self._drafts) > 200:
                self._drafts.popitem(last=False)

    def draft(self, draft_id: str, user: User) -> Draft:
        with self._lock:
            draft = self._drafts.get((draft_id or "").strip())
        if draft is None:
            raise UploadError("upload the shot and press 'Find faces' first (no scanned shot "
                              f"{draft_id!r})")
        if draft.username != user.username and user.role is not Role.ADMIN:
            raise AccessDenied("that shot was uploaded by another user")
        return draft

    def close(self) -> None:
        self.jobs.shutdown()
        self.registry.store.dispose()


# ---------------------------------------------------------------------------- presentation

GRANT_HEADERS = ["grant", "performer", "status", "detail", "projects", "languages",
                 "territories", "techniques", "valid until"]
PERFORMER_HEADERS = ["performer", "name", "status", "keys"]
RULE_HEADERS = ["", "rule", "subject", "detail"]
JOB_HEADERS = ["job", "user", "operation", "status", "stage", "progress", "created", "output",
               "error"]
LEDGER_HEADERS = ["index", "event", "time", "body"]

def _badge(label: str, value: str, good: bool | None, testid: str) -> str:
    tone = "neutral" if good is None else ("good" if good else "bad")
    return (f'<span class="studio-badge {tone}" data-testid="{testid}">'
            f"<b>{html.escape(label)}</b> {html.escape(value)}</span>")


def decision_rows(decision: Decision | dict[str, Any]) -> list[list[str]]:
    rules = decision.to_json()["rules"] if isinstance(decision, Decision) else decision.get(
        "rules", [])
    return [["✔" if r.get("passed") else "✘", str(r.get("rule", "")),
             str(r.get("performer_id") or r.get("track_id") or ""), str(r.get("detail", ""))]
            for r in rules]


def decision_summary(decision: Decision | dict[str, Any]) -> str:
    data = decision.to_json() if isinstance(decision, Decision) else decision
    verdict = "**ALLOW**" if data.get("allowed") else "**DENY**"
    head = (f"{verdict} — decision `{data.get('decision_id')}` (ledger entry "
            f"{data.get('ledger_index')})")
    reasons = data.get("reasons") or []
    if reasons:
        head += "\n\nDenied because:\n" + "\n".join(f"- {r}" for r in reasons)
    return head


def progress_html(record: JobRecord | None) -> str:
    if record is None:
        return '<div class="studio-progress" data-status="none">No render yet.</div>'
    pct = round(record.progress * 100)
    stage = f"{record.step}/7 {record.stage}" if record.step else record.stage or "queued"
    eta = f", about {record.eta_s:.0f} s left" if record.eta_s and not \
        record.status.finished else ""
    return (f'<div class="studio-progress" data-status="{record.status.value}" '
            f'data-job="{html.escape(record.job_id)}" data-progress="{pct}">'
            f'<div class="bar"><div class="fill" style="width:{pct}%"></div></div>'
            f"<span><b>{html.escape(record.status.value)}</b> · {html.escape(stage)} · {pct}%"
            f"{html.escape(eta)} — {html.escape(record.message)}</span></div>")


def job_row(r: JobRecord) -> list[str]:
    return [r.job_id, r.username, r.operation, r.status.value, r.stage,
            f"{round(r.progress * 100)}%", r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            Path(r.output).name if r.output else "", r.error or ""]


def _crop(rgb: NDArray[np.uint8], box: Sequence[float], size: int = 160) -> NDArray[np.uint8]:
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    pad = 0.35 * max(x1 - x0, y1 - y0)
    a, b = max(0, int(x0 - pad)), max(0, int(y0 - pad))
    c, d = min(w, int(x1 + pad)), min(h, int(y1 + pad))
    crop = rgb[b:d, a:c]
    if crop.size == 0:
        crop = rgb
    scale = size / max(crop.shape[:2])
    out = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
    return np.ascontiguousarray(out, dtype=np.uint8)


def scan_with_thumbnails(video: Path, registry: Registry, settings: Settings,
                         ) -> tuple[IdentifyResult, dict[str, NDArray[np.uint8]]]:
    """Track and identify the faces of a shot, keeping a crop of each track's first frame."""
    from pipelines.faces.scan import scan_video
    from pipelines.media.reader import VideoReader

    embedder = embedder_for(settings)
    thumbs: dict[str, NDArray[np.uint8]] = {}
    saturated = 0

    def on_frame(_index: int, rgb: Any, faces: list[Any]) -> None:
        nonlocal saturated
        saturated += len(faces) >= 8
        for track_id, obs in faces:
            label = f"t{track_id}"
            if label not in thumbs:
                thumbs[label] = _crop(np.asarray(rgb), obs.bbox)

    with VideoReader(video, on_vfr="conform") as reader:
        scan = scan_video((frame.rgb for frame in reader), embedder, max_faces=8,
                          on_frame=on_frame)
    result = identify_scan(scan, registry, embedder, max_faces=8, saturated_frames=saturated)
    return result, thumbs


def _still_with_thumbnail(image: Path, registry: Registry, settings: Settings,
                          ) -> tuple[IdentifyResult, dict[str, NDArray[np.uint8]]]:
    import cv2

    from studio.identity import identify_still

    result = identify_still(image, registry, embedder_for(settings))
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    thumbs: dict[str, NDArray[np.uint8]] = {}
    if bgr is not None:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        for t in result.tracks:
            thumbs[t.track_id] = _crop(np.asarray(rgb, dtype=np.uint8), (0, 0, w, h))
    return result, thumbs


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _channel(value: str | None) -> Channel:
    try:
        return Channel(value or Channel.STREAMING.value)
    except ValueError:
        raise RequestError(f"unknown channel {value!r}: one of "
                           f"{', '.join(c.value for c in Channel)}") from None


def _tracks(value: Sequence[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        label = str(item).split(" ", 1)[0].strip()
        if label:
            out.append(label)
    return tuple(dict.fromkeys(out))


def _file_path(value: Any) -> str | None:
    """The path Gradio gives for a gr.File value (a str, or an object with .name / .path)."""
    if value is None or value == "":
        return None
    if isinstance(value, str | Path):
        return str(value)
    if isinstance(value, dict):
        return str(value.get("path") or value.get("name") or "") or None
    return str(getattr(value, "path", None) or getattr(value, "name", None) or "") or None


def _original_name(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("orig_name")
        return str(name) if name else None
    return getattr(value, "orig_name", None)


# ---------------------------------------------------------------------------- the handlers


class Handlers:
    """The studio's events; see the module docstring for the roles."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    # -- uploads -------------------------------------------------------------------------------

    def _ingest(self, value: Any, kind: Kind, request_id: str, what: str) -> Upload:
        return self.studio.uploads.ingest(_file_path(value), kind, request_id, what=what,
                                          original_name=_original_name(value))

    # -- who am I --------------------------------------------------------------------------------

    @requires(*EVERYONE)
    def whoami(self, request: gr.Request) -> str:
        u = actor()
        can = {
            Role.ADMIN: "everything",
            Role.CONSENT_OFFICER: "the consent desk (performers, faces, grants, revocations), "
                                  "verify and the ledger",
            Role.OPERATOR: "lip-sync and reenactment renders, your jobs, and verify",
            Role.AUDITOR: "the ledger, revocation reports, every job's history, and verify",
        }[u.role]
        text = (f"Signed in as **{html.escape(u.display_name)}** (`{u.username}`, "
                f"role **{u.role.label}**) — you can use {can}.")
        if u.must_change_password:
            text += (" Your password is a one-time password: replace it with "
                     f"`studio users passwd {u.username} --password-file FILE` (an admin's "
                     "command).")
        return text

    # -- performers & consent ----------------------------------------------------------------

    @requires(*EVERYONE)
    def list_performers(self, request: gr.Request) -> list[list[str]]:
        reg = self.studio.registry
        rows = []
        for p in reg.performers():
            status = ("deceased" if p.deceased_on else f"minor until {p.minor_until}"
                      if p.minor_until else "")
            keys = ", ".join(f"{short_id(k.key_id)} {k.status}"
                             for k in reg.keys(p.performer_id))
            rows.append([p.performer_id, p.professional_name or p.legal_name, status, keys])
        return rows

    @requires(*EVERYONE)
    def list_grants(self, request: gr.Request) -> list[list[str]]:
        rows = []
        for g in self.studio.registry.grants():
            d = g.to_json()
            rows.append([g.grant_id, g.performer_id, g.status, g.detail,
                         ", ".join(d.get("projects", [])), ", ".join(d.get("languages", [])),
                         ", ".join(d.get("territories", [])),
                         ", ".join(d.get("techniques", [])), d["valid_until"]])
        return rows

    @requires(*OFFICER)
    def register_performer(self, performer_id: str, legal_name: str, professional_name: str,
                           public_key: Any, request: gr.Request,
                           ) -> tuple[str, list[list[str]]]:
        pid, name = (performer_id or "").strip(), (legal_name or "").strip()
        if not pid or not name:
            raise RequestError("a performer id and a legal name are required")
        upload = self._ingest(public_key, Kind.KEY, new_request_id("performer"),
                              "public key")
        key = load_public_key(upload.path.read_bytes())
        reg, who = self.studio.registry, actor().ledger_name
        reg.register_performer(pid, name, professional_name=_text(professional_name),
                               officer=who)
        reg.add_key(pid, key, officer=who, holder_role=SignatoryRole.SELF)
        message = (f"Registered performer **{pid}** with key `{short_id(key.key_id)}` "
                   f"(recorded by {html.escape(who)}).")
        return message, self.list_performers(request)

    @requires(*OFFICER)
    def preview_faces(self, files: Sequence[Any] | None, request: gr.Request,
                      ) -> tuple[list[tuple[NDArray[np.uint8], str]], str]:
        """Faces found in reference uploads (a few frames of each), before enrolling."""
        from pipelines.faces.landmarks import FaceMeshDetector
        from studio.identity import reference_frames

        request_id = new_request_id("enrol")
        uploads = [self._ingest(f, Kind.IMAGE_OR_VIDEO, request_id, "reference")
                   for f in files or []]
        if not uploads:
            raise UploadError("upload one or more reference images or videos")
        gallery: list[tuple[NDArray[np.uint8], str]] = []
        lines = []
        with FaceMeshDetector(static=True, max_faces=2) as detector:
            for up in uploads:
                for seen, (index, rgb) in enumerate(reference_frames(up.path, 25), 1):
                    faces = detector.detect(rgb)
                    for face in faces:
                        gallery.append((_crop(np.asarray(rgb), face.bbox),
                                        f"{up.original_name} frame {index}"
                                        + (" — more than one face: not used" if len(faces) > 1
                                           else "")))
                    if seen >= 4:
                        break
                lines.append(f"- {html.escape(up.original_name)}: {up.detail or 'ok'}")
        note = "\n".join(lines) + (f"\n\n{len(gallery)} face(s) detected in the sampled frames."
                                   if gallery else "\n\nNo face detected.")
        return gallery, note

    @requires(*OFFICER)
    def enrol_face(self, performer_id: str, files: Sequence[Any] | None,
                   request: gr.Request) -> str:
        from studio.identity import enrol

        pid = (performer_id or "").strip()
        if not pid:
            raise RequestError("choose the performer to enrol")
        request_id = new_request_id("enrol")
        uploads = [self._ingest(f, Kind.IMAGE_OR_VIDEO, request_id, "reference")
                   for f in files or []]
        if not uploads:
            raise UploadError("upload one or more reference images or videos")
        report = enrol(self.studio.registry, pid, [u.path for u in uploads],
                       embedder_for(self.studio.settings), officer=actor().ledger_name)
        lines = [f"**{pid}**: {report.template_count} template(s) enrolled with "
                 f"{report.embedder}."]
        for f in report.files:
            why = ", ".join(f"{k} ×{v}" for k, v in sorted(f.rejected.items())) or "none"
            lines.append(f"- `{Path(f.path).name}` (sha256 `{f.sha256[:16]}…`): "
                         f"{f.frames_examined} frames examined, {f.accepted} good, "
                         f"{len(f.templates)} kept; rejected: {why}")
        if not report.template_count:
            lines.append("\n**No usable face found; nothing was enrolled.**")
        else:
            lines.append("\nA grant must name this reference media (its sha256) or these "
                         "templates in its evidence before the face is used for matching.")
        return "\n".join(lines)

    @requires(*OFFICER)
    def import_grant(self, grant_file: Any, request: gr.Request,
                     ) -> tuple[str, list[list[str]]]:
        upload = self._ingest(grant_file, Kind.GRANT, new_request_id("grant"), "grant file")
        status = self.studio.registry.import_grant(upload.path.read_bytes(),
                                                   officer=actor().ledger_name)
        message = (f"Imported grant **{status.grant_id}** for **{status.performer_id}**: "
                   f"{status.status} — {status.detail} (ledger entry {status.ledger_index}).")
        return message, self.list_grants(request)

    @requires(*OFFICER)
    def revoke_grant(self, grant_id: str, reason: str, request_reference: str,
                     request: gr.Request) -> tuple[str, list[list[str]]]:
        gid, why, ref = (grant_id or "").strip(), (reason or "").strip(), \
            (request_reference or "").strip()
        if not gid or not why or not ref:
            raise RequestError("the grant, a reason and the performer's request reference "
                               "(letter, e-mail, call) are all required")
        doc = self.studio.registry.revoke_grant(gid, reason=why, officer=actor().ledger_name,
                                                performer_request_reference=ref)
        report = self.studio.registry.revocation_report(gid)
        message = (f"Revoked grant **{gid}** ({doc.payload.revocation_id}). "
                   f"{len(report.outputs)} published output(s) were made under it — see the "
                   "revocation report.")
        return message, self.list_grants(request)

    @requires(*REPORT_READERS)
    def revocation_report(self, grant_id: str, request: gr.Request,
                          ) -> tuple[str, list[list[str]]]:
        gid = (grant_id or "").strip()
        if not gid:
            raise RequestError("choose a grant")
        report = self.studio.registry.revocation_report(gid)
        g = report.grant
        text = (f"Grant **{g.grant_id}** ({g.performer_id}): **{g.status}** — {g.detail}. "
                f"{len(report.outputs)} output(s) published under it.")
        rows = [[str(o.ledger_index), o.published_at, o.output_sha256, o.manifest_id,
                 o.decision_id] for o in report.outputs]
        return text, rows

    # -- shots, faces, consent checks ------------------------------------------------------------

    @requires(*OPERATOR)
    def scan_shot(self, shot: Any, request: gr.Request,
                  ) -> tuple[str, list[tuple[NDArray[np.uint8], str]], Any, str]:
        """Upload a lip-sync shot and find its faces (thumbnails with their consent status)."""
        return self._scan(shot, "lipsync")

    @requires(*OPERATOR)
    def scan_reenact_shot(self, shot: Any, request: gr.Request,
                          ) -> tuple[str, list[tuple[NDArray[np.uint8], str]], Any, str]:
        """Upload the shot (or still) to re-animate and find its faces."""
        return self._scan(shot, "reenact")

    def _scan(self, shot: Any, operation: str,
              ) -> tuple[str, list[tuple[NDArray[np.uint8], str]], Any, str]:
        user = actor()
        draft_id = new_request_id("shot")
        kind = Kind.VIDEO if operation == "lipsync" else Kind.IMAGE_OR_VIDEO
        upload = self._ingest(shot, kind, draft_id, "shot")
        if upload.detail == "image":
            identity, thumbs = _still_with_thumbnail(upload.path, self.studio.registry,
                                                     self.studio.settings)
        else:
            identity, thumbs = scan_with_thumbnails(upload.path, self.studio.registry,
                                                    self.studio.settings)
        gallery: list[tuple[NDArray[np.uint8], str]] = []
        choices: list[str] = []
        consented: list[str] = []
        for t in identity.tracks:
            pid = t.match.performer_id
            caption = (f"{t.track_id}: {pid} — consent on file" if pid else
                       f"{t.track_id}: no consent – will be left untouched")
            thumb = thumbs.get(t.track_id)
            if thumb is not None:
                gallery.append((thumb, caption))
            if pid:
                label = f"{t.track_id} ({pid})"
                choices.append(label)
                consented.append(label)
        self.studio.keep(Draft(draft_id, user.username, operation, upload, identity, gallery))
        lines = [f"Shot `{html.escape(upload.original_name)}` ({upload.detail}): "
                 f"{len(identity.tracks)} face track(s)."]
        for t in identity.tracks:
            m = t.match
            dist = "" if m.distance is None else f", distance {m.distance:.3f}"
            lines.append(f"- **{t.track_id}** frames {t.track.first_frame}–{t.track.last_frame}: "
                         + (f"performer **{m.performer_id}**{dist}" if m.performer_id else
                            f"no consented performer{dist} — left untouched"))
        if not consented:
            lines.append("\nNo face in this shot matches a performer with consent: nothing can "
                         "be rendered.")
        update = gr.update(choices=choices, value=consented[:1])
        return draft_id, gallery, update, "\n".join(lines)

    @requires(*OPERATOR)
    def check_consent(self, draft_id: str, project_id: str, language: str, territory: str,
                      channel: str, tracks: Sequence[str] | None, script: Any,
                      request: gr.Request) -> tuple[str, list[list[str]]]:
        """Ask the gate now (ledgered) — every rule and its outcome, before rendering."""
        user = actor()
        draft = self.studio.draft(draft_id, user)
        script_sha = None
        if script:
            up = self._ingest(script, Kind.SCRIPT, draft.draft_id, "script")
            script_sha = sha256_file(up.path)
        auth = self._authorization(draft, user, project_id, language, territory, channel,
                                   _tracks(tracks), script_sha)
        decision = self.studio.registry.authorize(auth, draft.identity.matches,
                                                  known_tracks=draft.identity.track_ids)
        text = decision_summary(decision)
        if draft.operation == "reenact":
            text += ("\n\nThe driving performer's own consent (performance driving) is checked "
                     "when the render starts, from the driving video or motion file.")
        return text, decision_rows(decision)

    @requires(*OPERATOR)
    def check_reenact(self, draft_id: str, project_id: str, language: str, territory: str,
                      channel: str, tracks: Sequence[str] | None,
                      request: gr.Request) -> tuple[str, list[list[str]]]:
        """The consent check of the Reenact tab (no script)."""
        return self.check_consent(draft_id, project_id, language, territory, channel, tracks,
                                  None, request)

    def _authorization(self, draft: Draft, user: User, project_id: str, language: str,
                       territory: str, channel: str, tracks: tuple[str, ...],
                       script_sha256: str | None) -> AuthorizationRequest:
        matched = {t.track_id: t.match.performer_id for t in draft.identity.tracks}
        wanted = list(tracks) or [tid for tid, pid in matched.items() if pid is not None]
        if not wanted:
            raise RequestError("no face in the shot matches a performer with consent")
        for tid in wanted:
            if matched.get(tid) is None:
                raise RequestError(f"face track {tid} matches no performer with consent; it "
                                   "can only be left untouched")
        if draft.operation == "lipsync":
            technique, alteration = Technique.LIP_SYNC, Alteration.MOUTH_REGION
        else:
            technique, alteration = Technique.FACE_REENACTMENT, Alteration.FULL_FACE
        return AuthorizationRequest.model_validate({
            "operation": draft.operation, "project_id": (project_id or "").strip(),
            "language": (language or "").strip(), "territory": (territory or "").strip(),
            "channel": _channel(channel).value, "alteration": alteration.value,
            "subjects": [Subject(performer_id=str(matched[t]), technique=technique,
                                 track_id=t) for t in wanted],
            "source_media_sha256": sha256_file(draft.shot.path),
            "script_sha256": script_sha256, "operator": user.ledger_name})

    # -- renders ---------------------------------------------------------------------------------

    @requires(*OPERATOR)
    def render_lipsync(self, draft_id: str, dub: Any, m_and_e: Any, script: Any,
                       project_id: str, language: str, territory: str, channel: str,
                       source_language: str, tracks: Sequence[str] | None, output_name: str,
                       request: gr.Request) -> tuple[str, str]:
        user = actor()
        draft = self.studio.draft(draft_id, user)
        if draft.operation != "lipsync":
            raise RequestError("that shot was scanned for a reenactment")
        folder = draft.draft_id
        dub_up = self._ingest(dub, Kind.AUDIO, folder, "dub track") if dub else None
        me_up = self._ingest(m_and_e, Kind.AUDIO, folder, "M&E stem") if m_and_e else None
        script_up = self._ingest(script, Kind.SCRIPT, folder, "script") if script else None
        request_ = RenderRequest(
            operation="lipsync", source=draft.shot.path, project_id=(project_id or "").strip(),
            language=(language or "").strip(), territory=(territory or "").strip(),
            operator=user.ledger_name, channel=_channel(channel),
            source_language=_text(source_language), tracks=_tracks(tracks),
            output_name=_text(output_name), dub=dub_up.path if dub_up else None,
            m_and_e=me_up.path if me_up else None,
            script=script_up.path if script_up else None)
        record = self.studio.jobs.submit(request_, user.username)
        return record.job_id, progress_html(record)

    @requires(*OPERATOR)
    def render_reenact(self, draft_id: str, driver: Any, motion: Any, project_id: str,
                       language: str, territory: str, channel: str,
                       tracks: Sequence[str] | None, output_name: str,
                       request: gr.Request) -> tuple[str, str]:
        user = actor()
        draft = self.studio.draft(draft_id, user)
        if draft.operation != "reenact":
            raise RequestError("that shot was scanned for a lip-sync")
        folder = draft.draft_id
        if bool(driver) == bool(motion):
            raise RequestError("give either a driving video or a motion file, not both")
        driver_up = self._ingest(driver, Kind.VIDEO, folder, "driving video") if driver \
            else None
        motion_up = self._ingest(motion, Kind.MOTION, folder, "motion file") if motion \
            else None
        request_ = RenderRequest(
            operation="reenact", source=draft.shot.path, project_id=(project_id or "").strip(),
            language=(language or "").strip(), territory=(territory or "").strip(),
            operator=user.ledger_name, channel=_channel(channel), tracks=_tracks(tracks),
            output_name=_text(output_name), driver=driver_up.path if driver_up else None,
            motion=motion_up.path if motion_up else None)
        record = self.studio.jobs.submit(request_, user.username)
        return record.job_id, progress_html(record)

    def _job(self, job_id: str, user: User) -> JobRecord:
        record = self.studio.jobs.get((job_id or "").strip())
        if record.username != user.username and not user.can(Role.AUDITOR):
            raise AccessDenied("that job belongs to another user")
        return record

    @requires(Role.OPERATOR, Role.AUDITOR)
    def job_status(self, job_id: str, request: gr.Request,
                   ) -> tuple[str, str, str | None, str | None, list[list[str]]]:
        """Progress, result and decision of a job (polled by the page while it runs)."""
        if not (job_id or "").strip():
            return progress_html(None), "", None, None, []
        record = self._job(job_id, actor())
        text = f"Job `{record.job_id}`: **{record.status.value}**"
        if record.status is JobStatus.DONE and record.outcome:
            o = record.outcome
            text += (f" — published `{Path(str(o['output'])).name}` (sha256 "
                     f"`{str(o['output_sha256'])[:16]}…`, {o['frames']} frames in "
                     f"{o['seconds']} s, watermark {o['watermark_payload']}, output ledger "
                     f"entry {o['output_ledger_index']}).")
        elif record.error:
            text += f" — {html.escape(record.error)}"
        video = record.output if record.status is JobStatus.DONE and record.output else None
        rows = decision_rows(record.decision) if record.decision else []
        if record.decision:
            text += "\n\n" + decision_summary(record.decision)
        return progress_html(record), text, video, video, rows

    @requires(*OPERATOR)
    def cancel_job(self, job_id: str, request: gr.Request) -> str:
        user = actor()
        record = self._job(job_id, user)
        if record.username != user.username and user.role is not Role.ADMIN:
            raise AccessDenied("only the job's owner or an admin can cancel it")
        record = self.studio.jobs.cancel(record.job_id)
        return f"Cancelling job `{record.job_id}` — nothing will be published."

    @requires(Role.OPERATOR, Role.AUDITOR)
    def list_jobs(self, scope: str, request: gr.Request) -> list[list[str]]:
        user = actor()
        everyone = scope == "all users"
        if everyone and not user.can(Role.AUDITOR):
            raise AccessDenied("only auditors and admins see every user's jobs")
        return [job_row(r) for r in self.studio.jobs.history(None if everyone
                                                             else user.username)]

    # -- verify ----------------------------------------------------------------------------------

    @requires(*EVERYONE)
    def verify(self, file: Any, request: gr.Request) -> tuple[str, str, dict[str, Any]]:
        from studio.provenance.identity import trust_anchors
        from studio.provenance.store import ManifestStore
        from studio.provenance.verify import verify_file

        upload = self._ingest(file, Kind.ANY, new_request_id("verify"), "file")
        settings = self.studio.settings
        report = verify_file(upload.path, self.studio.registry,
                             ManifestStore(settings.manifests_dir),
                             trust_anchors_pem=trust_anchors(settings) or None)
        consent = report.consent_now
        badges = "".join([
            _badge("provenance", report.provenance,
                   report.provenance in ("Trusted", "Valid") if report.provenance != "Missing"
                   else False, "badge-provenance"),
            _badge("signer", report.signer_trust, report.signer_trust.startswith("trusted"),
                   "badge-signer"),
            _badge("consent", consent.replace("_", " "), consent == "active", "badge-consent"),
            _badge("watermark", report.watermark_status,
                   report.watermark_status.startswith("found"), "badge-watermark"),
        ])
        lines = [f"**{html.escape(upload.original_name)}** — sha256 `{report.sha256}`"]
        for g in report.consent:
            lines.append(f"- grant **{g.grant_id}**: {g.status} — {html.escape(g.detail)}")
        if report.ledger is not None:
            lines.append(f"- ledger: publication event at index {report.ledger.index} of "
                         f"{report.ledger.tree_size}, inclusion proof "
                         + ("verified" if report.ledger.verified else "**FAILED**"))
        if report.recovered is not None:
            lines.append(f"- {html.escape(report.recovered.note)}")
        if report.manifest_error and report.recovered is None:
            lines.append(f"- {html.escape(report.manifest_error)}")
        data = report.to_json()
        data["file"] = upload.original_name
        return f'<div class="studio-badges">{badges}</div>', "\n".join(lines), data

    # -- ledger ----------------------------------------------------------------------------------

    @requires(*LEDGER_READERS)
    def ledger_latest(self, request: gr.Request) -> tuple[str, str]:
        reg = self.studio.registry
        with reg.store.session() as s:
            note = Ledger.latest_checkpoint(s)
            size = Ledger.size(s)
        key = reg.ledger.verifier.verifier_key()
        if note is None:
            return "No checkpoint has been signed yet.", key
        return (f"{note}\n(the ledger holds {size} entries now)"), key

    @requires(*LEDGER_READERS)
    def ledger_sign_checkpoint(self, request: gr.Request) -> tuple[str, str]:
        reg = self.studio.registry
        with reg.store.session() as s:
            reg.ledger.checkpoint(s, utc_now())
        return self.ledger_latest(request)

    @requires(*LEDGER_READERS)
    def ledger_search(self, kind: str, ref_id: str, request: gr.Request) -> list[list[str]]:
        kinds = {"grant", "output", "decision", "performer", "key"}
        kind = (kind or "grant").strip()
        if kind not in kinds:
            raise RequestError(f"search by one of {', '.join(sorted(kinds))}")
        ref = (ref_id or "").strip()
        if not ref:
            raise RequestError(f"give a {kind} id (an output is found by its sha256)")
        with self.studio.registry.store.session() as s:
            entries = Ledger.entries_referencing(s, kind, ref)
        return [[str(e.index), e.event_type.value,
                 e.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                 json.dumps(e.body, sort_keys=True)] for e in entries]

    @requires(*LEDGER_READERS)
    def ledger_proof(self, index: float | int | str | None, request: gr.Request,
                     ) -> tuple[str, str]:
        try:
            idx = int(str(index).strip())
        except ValueError:
            raise RequestError("give the index of a ledger entry (a whole number)") from None
        reg = self.studio.registry
        with reg.store.session() as s:
            proof = reg.ledger.inclusion_proof(s, idx)
            entry = Ledger.entry(s, idx)
        proof.verify()
        folder = self.studio.settings.data_dir / "downloads" / new_request_id("proof")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"inclusion-proof-{idx}-of-{proof.size}.json"
        path.write_text(json.dumps({"origin": reg.ledger.origin, "entry": entry.body,
                                    "event": entry.event_type.value, **proof.to_json()},
                                   indent=1), encoding="utf-8")
        text = (f"Inclusion proof of entry **{idx}** ({entry.event_type.value}) in a tree of "
                f"{proof.size}: {len(proof.hashes)} hashes, root `{proof.root.hex()[:16]}…` — "
                "verified.")
        return text, str(path)


def grant_choices(registry: Registry) -> list[str]:
    return [g.grant_id for g in registry.grants()]


def performer_choices(registry: Registry) -> list[str]:
    return [p.performer_id for p in registry.performers()]


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


__all__ = ["EventType", "Handlers", "NotFoundError", "Studio", "actor", "requires"]
