"""The Gradio studio: a thin layout over :mod:`studio.ui.handlers`, and its launch.

Every event calls a handler that checks the signed-in user's role on the server (see
``handlers.requires``); the layout shows every tab to every role, with a line saying who may
act there, so a refusal is explained rather than hidden. API names are stable: they are the
public API that ``gradio_client`` uses (README, "The studio UI").
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import anyio
import gradio as gr

from consent.fields import Channel
from studio.accounts import Accounts
from studio.accounts.service import MIN_CHOSEN_PASSWORD_LENGTH
from studio.jobs import JobStatus
from studio.ui.handlers import (
    GRANT_HEADERS,
    JOB_HEADERS,
    LEDGER_HEADERS,
    PERFORMER_HEADERS,
    RULE_HEADERS,
    Handlers,
    Studio,
    progress_html,
)
from studio.ui.review import review_tab
from studio.ui.uploads import MAX_UPLOAD

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "ja", "fr-CA", "es-MX", "pt-BR"]
AUTH_MESSAGE = ("Sign in with your studio account (`studio users add`). After 5 failed attempts "
                "the account and your address are locked for a while, longer each time.")

CSS = """
.studio-badges { display: flex; gap: .5rem; flex-wrap: wrap; margin: .5rem 0; }
.studio-badge { padding: .35rem .7rem; border-radius: 999px; font-size: .95rem;
  border: 1px solid var(--border-color-primary); }
.studio-badge.good { background: #e6f4ea; color: #13632c; border-color: #9bd3ad; }
.studio-badge.bad { background: #fdecea; color: #8a1c12; border-color: #f1a79f; }
.studio-badge.neutral { background: #fff7e0; color: #6b4e00; border-color: #f0d58a; }
.studio-progress .bar { height: 12px; border-radius: 6px; background: var(--neutral-200);
  overflow: hidden; margin-bottom: .3rem; }
.studio-progress .fill { height: 100%; background: var(--color-accent); transition: width .3s; }
.studio-progress[data-status="denied"] .fill,
.studio-progress[data-status="failed"] .fill { background: #c0392b; }
.studio-role-note { opacity: .8; font-size: .9rem; }
"""

_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "studio_client_address", default=None)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class ClientAddress:
    """ASGI middleware: remember the peer address of each request for login throttling.

    Only the socket's address is used (a proxy's ``X-Forwarded-For`` is a claim, not a fact):
    behind a reverse proxy, throttling by address applies to the proxy, and throttling by
    user name still applies to each account.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        client = scope.get("client") if scope.get("type") == "http" else None
        token = _client_address.set(str(client[0]) if client else None)
        wrapped: Callable[[Any], Awaitable[None]] = send
        if _failed_login_is_401(scope):

            async def send_401(message: Any) -> None:
                if message.get("type") == "http.response.start" and message.get("status") == 400:
                    headers = [*message.get("headers", []),
                               (b"www-authenticate", b'Form realm="studio"')]
                    message = {**message, "status": 401, "headers": headers}
                await send(message)

            wrapped = send_401
        try:
            await self.app(scope, receive, wrapped)
        finally:
            _client_address.reset(token)


def _failed_login_is_401(scope: Scope) -> bool:
    """Whether a refused sign-in on this request should answer 401 (Gradio answers 400).

    Every client but Gradio's own login page gets 401, the status for failed
    authentication. That page (a browser ``fetch``, which always sends ``Sec-Fetch-Mode``)
    shows "incorrect credentials" only on a 400, so it keeps Gradio's answer.
    """
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return False
    if not str(scope.get("path", "")).rstrip("/").endswith("/login"):
        return False
    headers = {k.lower() for k, _v in scope.get("headers", [])}
    return b"sec-fetch-mode" not in headers


def make_auth(accounts: Accounts) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's ``auth=`` callable: argon2 check and throttling, off the event loop."""

    async def auth(username: str, password: str) -> bool:
        client = _client_address.get()
        result = await anyio.to_thread.run_sync(
            lambda: accounts.authenticate(username, password, client))
        return result.ok

    return auth


def _note(text: str) -> gr.Markdown:
    return gr.Markdown(text, elem_classes=["studio-role-note"])


def _table(headers: list[str], label: str, elem_id: str | None = None) -> gr.Dataframe:
    return gr.Dataframe(headers=headers, label=label, interactive=False, wrap=True,
                        elem_id=elem_id)


def build(studio: Studio) -> gr.Blocks:
    """The studio's Blocks (all tabs); ``launch`` serves it behind the login."""
    h = Handlers(studio)
    channels = [c.value for c in Channel]

    def poll(job_id: str, request: gr.Request) -> tuple[Any, ...]:
        out = h.job_status(job_id, request)
        finished = True
        if (job_id or "").strip():
            finished = studio.jobs.get(job_id.strip()).status.finished
        return (*out, gr.Timer(active=not finished))

    def started(job_id: str, html: str) -> tuple[str, str, gr.Timer]:
        return job_id, html, gr.Timer(active=True)

    demo = gr.Blocks(title="Consent-gated dubbing studio", analytics_enabled=False)
    with demo:
        with gr.Row():
            gr.Markdown("## Consent-gated dubbing studio")
            who = gr.Markdown(elem_id="whoami")
            gr.Button("Sign out", link="/logout", size="sm", scale=0, elem_id="logout")

        with gr.Tabs() as tabs:
            # -- Performers & consent ------------------------------------------------------
            with gr.Tab("Performers & consent", id="consent", elem_id="tab-consent"):
                _note("Consent officers and admins register performers, enrol faces, import "
                      "and revoke grants. Everyone signed in can read the lists; auditors read "
                      "revocation reports.")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Register a performer")
                        p_id = gr.Textbox(label="Performer id", elem_id="performer-id")
                        p_legal = gr.Textbox(label="Legal name", elem_id="performer-legal")
                        p_pro = gr.Textbox(label="Professional name (optional)",
                                           elem_id="performer-professional")
                        p_key = gr.File(label="Performer's public key (.pub)",
                                        elem_id="performer-key")
                        p_btn = gr.Button("Register performer", variant="primary",
                                          elem_id="register-performer")
                        p_out = gr.Markdown(elem_id="register-result")
                    with gr.Column():
                        gr.Markdown("### Import a signed grant")
                        g_file = gr.File(label="Signed grant (.json)", elem_id="grant-file")
                        g_btn = gr.Button("Import grant", variant="primary",
                                          elem_id="import-grant")
                        g_out = gr.Markdown(elem_id="import-result")
                performers = _table(PERFORMER_HEADERS, "Performers", "performers-table")
                with gr.Accordion("Enrol a performer's face", open=False):
                    e_pid = gr.Textbox(label="Performer id", elem_id="enrol-performer")
                    e_files = gr.File(label="Reference images or videos", file_count="multiple",
                                      elem_id="enrol-files")
                    with gr.Row():
                        e_prev = gr.Button("Preview detected faces", elem_id="preview-faces")
                        e_btn = gr.Button("Enrol face", variant="primary", elem_id="enrol-face")
                    # Square face thumbnails in fixed columns (fit_columns would stretch one
                    # thumbnail over the whole row and crop it to a band of forehead).
                    e_gallery = gr.Gallery(label="Detected faces", columns=6, height=220,
                                           object_fit="contain", fit_columns=False)
                    e_out = gr.Markdown(elem_id="enrol-result")
                gr.Markdown("### Grants")
                grants = _table(GRANT_HEADERS, "Grants and their status now", "grants-table")
                g_refresh = gr.Button("Refresh", size="sm", elem_id="refresh-grants")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Revoke a grant")
                        r_gid = gr.Textbox(label="Grant id", elem_id="revoke-grant-id")
                        r_reason = gr.Textbox(label="Reason", elem_id="revoke-reason")
                        r_ref = gr.Textbox(label="Performer's request (letter, e-mail, call)",
                                           elem_id="revoke-ref")
                        r_btn = gr.Button("Revoke grant", variant="stop", elem_id="revoke")
                        r_out = gr.Markdown(elem_id="revoke-result")
                    with gr.Column():
                        gr.Markdown("### Revocation report")
                        rr_gid = gr.Textbox(label="Grant id", elem_id="report-grant-id")
                        rr_btn = gr.Button("Show outputs published under it",
                                           elem_id="revocation-report")
                        rr_out = gr.Markdown(elem_id="report-result")
                        rr_table = _table(["ledger", "published", "output sha256", "manifest",
                                           "decision"], "Outputs")

            # -- Lip-sync dub ---------------------------------------------------------------
            with gr.Tab("Lip-sync dub", id="lipsync", elem_id="tab-lipsync"):
                _note("Operators and admins render. Only faces with consent are touched; "
                      "every other face is left exactly as shot.")
                with gr.Row():
                    with gr.Column(scale=1):
                        l_shot = gr.File(label="1. The shot (video)", elem_id="lipsync-shot")
                        l_scan = gr.Button("Find faces", elem_id="lipsync-scan")
                        l_draft = gr.Textbox(label="Shot id", interactive=False,
                                             elem_id="lipsync-draft")
                        l_gallery = gr.Gallery(label="Faces in the shot", columns=4,
                                               height=240, object_fit="contain", fit_columns=False,
                                               elem_id="lipsync-faces")
                        l_tracks = gr.CheckboxGroup(label="2. Faces to lip-sync",
                                                    elem_id="lipsync-tracks")
                        l_scan_out = gr.Markdown(elem_id="lipsync-scan-result")
                    with gr.Column(scale=1):
                        gr.Markdown("3. Either a recorded dub (optionally with M&E), or a "
                                    "translated script (SRT/WebVTT) spoken by TTS")
                        l_dub = gr.File(label="Dub dialogue track", elem_id="lipsync-dub")
                        l_me = gr.File(label="Music & effects (optional)", elem_id="lipsync-me")
                        l_script = gr.File(label="Translated script", elem_id="lipsync-script")
                        with gr.Row():
                            l_project = gr.Textbox(label="Project", value="demo-dub",
                                                   elem_id="lipsync-project")
                            l_lang = gr.Dropdown(LANGUAGES, value="fr", label="Language",
                                                 allow_custom_value=True,
                                                 elem_id="lipsync-language")
                            l_src_lang = gr.Dropdown(LANGUAGES, value="en",
                                                     label="Shot's language",
                                                     allow_custom_value=True)
                        with gr.Row():
                            l_terr = gr.Textbox(label="Territory", value="FR",
                                                elem_id="lipsync-territory")
                            l_chan = gr.Dropdown(channels, value="streaming", label="Channel")
                            l_name = gr.Textbox(label="Output name (optional, .mp4)",
                                                elem_id="lipsync-output-name")
                        l_check = gr.Button("4. Check consent", elem_id="lipsync-check")
                        l_check_out = gr.Markdown(elem_id="lipsync-decision")
                        l_rules = _table(RULE_HEADERS, "Every rule and its outcome",
                                         "lipsync-rules")
                        l_render = gr.Button("5. Render", variant="primary",
                                             elem_id="lipsync-render")
                with gr.Row():
                    with gr.Column():
                        l_job = gr.Textbox(label="Job", interactive=False, elem_id="lipsync-job")
                        l_progress = gr.HTML(progress_html(None), elem_id="lipsync-progress")
                        l_status = gr.Markdown(elem_id="lipsync-status")
                        with gr.Row():
                            l_refresh = gr.Button("Refresh status", size="sm",
                                                  elem_id="lipsync-refresh")
                            l_cancel = gr.Button("Cancel render", size="sm", variant="stop",
                                                 elem_id="lipsync-cancel")
                        l_job_rules = _table(RULE_HEADERS, "The render's decision")
                    with gr.Column():
                        l_video = gr.Video(label="Result", interactive=False,
                                           elem_id="lipsync-video")
                        l_download = gr.File(label="Download", interactive=False,
                                             elem_id="lipsync-download")
                l_timer = gr.Timer(1.0, active=False)

            # -- Reenact ----------------------------------------------------------------------
            with gr.Tab("Reenact", id="reenact", elem_id="tab-reenact"):
                _note("Operators and admins render. The face is re-animated from a driving "
                      "performance; the driving performer must have consented too.")
                with gr.Row():
                    with gr.Column():
                        x_shot = gr.File(label="1. The shot or still to re-animate",
                                         elem_id="reenact-shot")
                        x_scan = gr.Button("Find faces", elem_id="reenact-scan")
                        x_draft = gr.Textbox(label="Shot id", interactive=False,
                                             elem_id="reenact-draft")
                        x_gallery = gr.Gallery(label="Faces in the shot", columns=4,
                                               height=240, object_fit="contain",
                                               fit_columns=False, elem_id="reenact-faces")
                        x_tracks = gr.CheckboxGroup(label="2. Face to re-animate",
                                                    elem_id="reenact-tracks")
                        x_scan_out = gr.Markdown()
                    with gr.Column():
                        gr.Markdown("3. Either a driving video or a motion file (.motion.npz)")
                        x_driver = gr.File(label="Driving video", elem_id="reenact-driver")
                        x_motion = gr.File(label="Motion file", elem_id="reenact-motion")
                        with gr.Row():
                            x_project = gr.Textbox(label="Project", value="demo-dub")
                            x_lang = gr.Dropdown(LANGUAGES, value="en", label="Language",
                                                 allow_custom_value=True)
                            x_terr = gr.Textbox(label="Territory", value="FR")
                        with gr.Row():
                            x_chan = gr.Dropdown(channels, value="streaming", label="Channel")
                            x_name = gr.Textbox(label="Output name (optional, .mp4)")
                        x_check = gr.Button("4. Check consent", elem_id="reenact-check")
                        x_check_out = gr.Markdown(elem_id="reenact-decision")
                        x_rules = _table(RULE_HEADERS, "Every rule and its outcome")
                        x_render = gr.Button("5. Render", variant="primary",
                                             elem_id="reenact-render")
                with gr.Row():
                    with gr.Column():
                        x_job = gr.Textbox(label="Job", interactive=False, elem_id="reenact-job")
                        x_progress = gr.HTML(progress_html(None), elem_id="reenact-progress")
                        x_status = gr.Markdown(elem_id="reenact-status")
                        with gr.Row():
                            x_refresh = gr.Button("Refresh status", size="sm")
                            x_cancel = gr.Button("Cancel render", size="sm", variant="stop")
                        x_job_rules = _table(RULE_HEADERS, "The render's decision")
                    with gr.Column():
                        x_video = gr.Video(label="Result", interactive=False)
                        x_download = gr.File(label="Download", interactive=False)
                x_timer = gr.Timer(1.0, active=False)

            # -- Verify -----------------------------------------------------------------------
            with gr.Tab("Verify", id="verify", elem_id="tab-verify"):
                _note("Anyone signed in can verify any file: provenance (C2PA), who signed it, "
                      "whether the consent still holds today, and the watermark.")
                v_file = gr.File(label="A file to verify", elem_id="verify-file")
                v_btn = gr.Button("Verify", variant="primary", elem_id="verify-button")
                v_badges = gr.HTML(elem_id="verify-badges")
                v_text = gr.Markdown(elem_id="verify-details")
                with gr.Accordion("Full report (JSON)", open=False):
                    v_json = gr.JSON()

            # -- Ledger -----------------------------------------------------------------------
            with gr.Tab("Ledger", id="ledger", elem_id="tab-ledger"):
                _note("Auditors, consent officers and admins read the tamper-evident ledger.")
                with gr.Row():
                    with gr.Column():
                        k_note = gr.Textbox(label="Latest signed checkpoint", lines=6,
                                            interactive=False, elem_id="ledger-checkpoint")
                        k_key = gr.Textbox(label="Verifier key", interactive=False)
                        with gr.Row():
                            k_load = gr.Button("Show latest", elem_id="ledger-latest")
                            k_sign = gr.Button("Sign a checkpoint now", elem_id="ledger-sign")
                    with gr.Column():
                        k_kind = gr.Dropdown(["grant", "output", "decision", "performer", "key"],
                                             value="grant", label="Search by",
                                             elem_id="ledger-kind")
                        k_ref = gr.Textbox(label="Id (an output by its sha256)",
                                           elem_id="ledger-ref")
                        k_search = gr.Button("Search", elem_id="ledger-search")
                        k_index = gr.Number(label="Entry index", precision=0,
                                            elem_id="ledger-index")
                        k_prove = gr.Button("Inclusion proof", elem_id="ledger-prove")
                        k_proof_text = gr.Markdown(elem_id="ledger-proof-result")
                        k_proof = gr.File(label="Download the proof", interactive=False,
                                          elem_id="ledger-proof-file")
                k_table = _table(LEDGER_HEADERS, "Ledger entries", "ledger-table")

            # -- Jobs -------------------------------------------------------------------------
            with gr.Tab("Jobs", id="jobs", elem_id="tab-jobs") as jobs_tab:
                _note("Operators see and cancel their own renders; auditors and admins see "
                      "everyone's. Under the table, [the render cluster](#jobs-cluster): its "
                      "nodes, CPUs and GPUs and the running jobs' tasks (`studio workers`).")
                with gr.Row():
                    j_scope = gr.Radio(["mine", "all users"], value="mine", label="Show",
                                       elem_id="jobs-scope")
                    j_refresh = gr.Button("Refresh", elem_id="jobs-refresh")
                j_table = _table(JOB_HEADERS, "Queue and history", "jobs-table")
                # STUDIO_EXECUTOR=ray: the running jobs' tasks and the Ray dashboard's link.
                j_cluster = gr.Markdown(elem_id="jobs-cluster")
                with gr.Row():
                    j_id = gr.Textbox(label="Job id", elem_id="jobs-id")
                    j_cancel = gr.Button("Cancel job", variant="stop", elem_id="jobs-cancel")
                j_out = gr.Markdown(elem_id="jobs-result")

            # -- Review (reels) ---------------------------------------------------------------
            review_tab(studio, LANGUAGES)

            # -- Account ----------------------------------------------------------------------
            with gr.Tab("Account", id="account", elem_id="tab-account"):
                _note("Everyone signed in changes their own password here. A one-time password "
                      "(the first admin's, or one an admin generated) must be changed before "
                      f"anything else; a new password has at least {MIN_CHOSEN_PASSWORD_LENGTH} "
                      "characters.")
                a_current = gr.Textbox(label="Current password", type="password",
                                       elem_id="account-current")
                a_new = gr.Textbox(label="New password", type="password",
                                   elem_id="account-new")
                a_repeat = gr.Textbox(label="Repeat the new password", type="password",
                                      elem_id="account-repeat")
                a_btn = gr.Button("Change password", variant="primary",
                                  elem_id="account-change")
                a_out = gr.Markdown(elem_id="account-result")

        # -- events (stable api names) ------------------------------------------------------
        def landing(request: gr.Request) -> tuple[Any, ...]:
            people, rows, tab = h.landing(request)
            return people, rows, gr.Tabs(selected=tab) if tab else gr.Tabs()

        demo.load(h.whoami, None, who, api_name="whoami")
        # A one-time password opens on the Account tab, with no refusal toasts.
        demo.load(landing, None, [performers, grants, tabs], api_visibility="private")
        p_btn.click(h.register_performer, [p_id, p_legal, p_pro, p_key], [p_out, performers],
                    api_name="register_performer")
        g_btn.click(h.import_grant, [g_file], [g_out, grants], api_name="import_grant")
        g_refresh.click(h.list_grants, None, grants, api_name="list_grants")
        g_refresh.click(h.list_performers, None, performers, api_name="list_performers")
        e_prev.click(h.preview_faces, [e_files], [e_gallery, e_out], api_name="preview_faces")
        e_btn.click(h.enrol_face, [e_pid, e_files], e_out, api_name="enrol_face")
        r_btn.click(h.revoke_grant, [r_gid, r_reason, r_ref], [r_out, grants],
                    api_name="revoke_grant")
        rr_btn.click(h.revocation_report, [rr_gid], [rr_out, rr_table],
                     api_name="revocation_report")

        l_scan.click(h.scan_shot, [l_shot], [l_draft, l_gallery, l_tracks, l_scan_out],
                     api_name="scan_shot")
        l_check.click(h.check_consent, [l_draft, l_project, l_lang, l_terr, l_chan, l_tracks,
                                        l_script], [l_check_out, l_rules],
                      api_name="check_consent")
        l_render.click(h.render_lipsync, [l_draft, l_dub, l_me, l_script, l_project, l_lang,
                                          l_terr, l_chan, l_src_lang, l_tracks, l_name],
                       [l_job, l_progress], api_name="render_lipsync",
                       ).success(started, [l_job, l_progress], [l_job, l_progress, l_timer],
                                 api_visibility="private")
        l_outputs = [l_progress, l_status, l_video, l_download, l_job_rules]
        l_timer.tick(poll, [l_job], [*l_outputs, l_timer], show_progress="hidden",
                     api_visibility="private")
        l_refresh.click(h.job_status, [l_job], l_outputs, api_name="job_status")
        l_cancel.click(h.cancel_job, [l_job], l_status, api_name="cancel_job")

        x_scan.click(h.scan_reenact_shot, [x_shot], [x_draft, x_gallery, x_tracks, x_scan_out],
                     api_name="scan_reenact_shot")
        x_check.click(h.check_reenact, [x_draft, x_project, x_lang, x_terr, x_chan, x_tracks,
                                        x_driver, x_motion],
                      [x_check_out, x_rules], api_name="check_reenact")
        x_render.click(h.render_reenact, [x_draft, x_driver, x_motion, x_project, x_lang,
                                          x_terr, x_chan, x_tracks, x_name],
                       [x_job, x_progress], api_name="render_reenact",
                       ).success(started, [x_job, x_progress], [x_job, x_progress, x_timer],
                                 api_visibility="private")
        x_outputs = [x_progress, x_status, x_video, x_download, x_job_rules]
        x_timer.tick(poll, [x_job], [*x_outputs, x_timer], show_progress="hidden",
                     api_visibility="private")
        x_refresh.click(h.job_status, [x_job], x_outputs, api_visibility="private")
        x_cancel.click(h.cancel_job, [x_job], x_status, api_visibility="private")

        v_btn.click(h.verify, [v_file], [v_badges, v_text, v_json], api_name="verify")

        k_load.click(h.ledger_latest, None, [k_note, k_key], api_name="ledger_checkpoint")
        k_sign.click(h.ledger_sign_checkpoint, None, [k_note, k_key],
                     api_name="ledger_sign_checkpoint")
        k_search.click(h.ledger_search, [k_kind, k_ref], k_table, api_name="ledger_search")
        k_prove.click(h.ledger_proof, [k_index], [k_proof_text, k_proof],
                      api_name="ledger_proof")

        j_refresh.click(h.list_jobs, [j_scope], j_table, api_name="list_jobs")
        j_refresh.click(h.jobs_cluster, [j_scope], j_cluster, api_name="jobs_cluster")
        jobs_tab.select(h.jobs_opened, [j_scope], [j_table, j_cluster], api_visibility="private")
        j_cancel.click(h.cancel_job, [j_id], j_out, api_visibility="private")

        changed = a_btn.click(h.change_password, [a_current, a_new, a_repeat], a_out,
                              api_name="change_password")
        changed.then(lambda: ("", "", ""), None, [a_current, a_new, a_repeat],
                     api_visibility="private", show_progress="hidden")
        changed.success(h.whoami, None, who, api_visibility="private"
                        ).success(h.list_performers, None, performers, api_visibility="private"
                                  ).success(h.list_grants, None, grants,
                                            api_visibility="private")
    return demo


def theme() -> gr.themes.Base:
    """The default theme on system fonts: the studio runs offline (no web fonts)."""
    soft: gr.themes.Base = gr.themes.Soft(
        font=["system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "monospace"])
    return soft


def launch(studio: Studio, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Serve the studio behind the login. ``block=False`` returns once the server is up."""
    demo = build(studio)
    # Interactive events share the queue; renders run in the job manager's own pool of
    # Settings.concurrent_renders workers, so a long render never holds a queue slot.
    demo.queue(default_concurrency_limit=8, max_size=256)
    studio.settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    from starlette.middleware import Middleware

    demo.launch(
        server_name=host, server_port=port, auth=cast(Any, make_auth(studio.accounts)),
        auth_message=AUTH_MESSAGE, max_file_size=MAX_UPLOAD, show_error=True,
        # Nothing under the data folder goes through Gradio's file route: downloads are
        # per-requester copies in Gradio's cache (studio.ui.downloads).
        allowed_paths=[], blocked_paths=[str(studio.settings.data_dir.resolve())],
        app_kwargs={"middleware": [Middleware(ClientAddress)]},
        prevent_thread_lock=not block, quiet=quiet, ssr_mode=False, theme=theme(), css=CSS,
        inbrowser=False, share=False, enable_monitoring=False,
        # No run history: it would keep uploads (grants, shots) in the browser and offers to
        # sync them to a third-party bucket.
        run_history=False, footer_links=["api", "settings"])
    return demo


def upload_roots() -> list[Path]:
    return [Path(gr.utils.get_upload_folder())]


__all__ = ["ClientAddress", "JobStatus", "build", "launch", "make_auth", "upload_roots"]
