"""The Review tab: a reel's language version shot by shot (state, QC, review), the A/B player
(the original shot beside the dubbed one, played and stepped together, frame by frame at the
reel's rate), approve or reject a shot with a note, the performer's signed approval upload,
and the release of the version (:mod:`studio.services.reel_review`).

Media reach the browser as the other tabs' results do: the requester's own copies in Gradio's
cache (:class:`studio.ui.downloads.Handoff`), shown in two ``gr.Video`` players; the A/B
controls are client-side events (``js=``) that drive both ``<video>`` elements, so stepping
never waits for the server.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from studio.errors import UsageError
from studio.services import desk, reel_review
from studio.ui.handlers import (
    EVERYONE,
    OFFICER,
    OPERATOR,
    Handlers,
    Studio,
    actor,
    requires,
)
from studio.ui.uploads import Kind, new_request_id

SHOT_HEADERS = ["shot", "timecode", "frames", "state", "characters", "QC", "QC figures",
                "review", "note"]
DELIVERABLE_HEADERS = ["kind", "file", "sha256", "approval"]
#: The QC figures shown per track (pipelines.qc.report.TrackQC), in this order.
QC_FIGURES = (("sync", "sync"), ("leak", "leak"), ("range", "range"), ("identity", "id"),
              ("jitter", "jitter"))

# The two players' <video> elements, and the frame shown at the reel's rate. A frame is
# shown from k/fps to (k+1)/fps: seeking to its middle lands on it whatever the rounding.
_VIDEOS = ("const v = ['#review-a', '#review-b'].map(s => document.querySelector(s + "
           "' video')).filter(Boolean);")
_SEEK = "const seek = (f) => v.forEach(x => { x.pause(); x.currentTime = (f + 0.5) / fps; });"
PLAY_JS = ("(fps, frame) => { " + _VIDEOS +
           " if (v.length === 2) { v[1].currentTime = v[0].currentTime; }"
           " v.forEach(x => x.play()); return frame; }")
PAUSE_JS = ("(fps, frame) => { " + _VIDEOS + _SEEK +
            " if (!v.length || !fps) return frame;"
            " const f = Math.floor(v[0].currentTime * fps + 1e-6); seek(f); return f; }")


def _qc_cells(row: reel_review.ReviewRow) -> tuple[str, str]:
    if row.qc is None:
        return "—", "—"
    flag = row.needs_review
    verdict = "—" if flag is None else ("needs review" if flag else "ok")
    figures = []
    for track in row.qc.get("tracks") or []:
        if isinstance(track, dict):
            figures.append(" · ".join(f"{label} {_figure(track[key])}"
                                      for key, label in QC_FIGURES
                                      if track.get(key) is not None))
    return verdict, "; ".join(f for f in figures if f) or "—"


def _figure(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def shot_rows(review: reel_review.ReelReview) -> list[list[str]]:
    rows = []
    for r in review.rows:
        verdict, figures = _qc_cells(r)
        decided = "" if r.review is None else f"{r.review.decision.value} by {r.review.reviewer}"
        if r.reviewable and r.review is None:
            decided = "to review"
        rows.append([str(r.shot), r.record_tc_in, str(r.frames), r.state,
                     ", ".join(r.characters), verdict, figures, decided,
                     (r.review.note if r.review is not None else r.reason or "")])
    return rows


def deliverable_rows(review: reel_review.ReelReview, approvals: dict[str, str]
                     ) -> list[list[str]]:
    return [[str(i["label"]), Path(str(i.get("path", ""))).name,
             str(i.get("sha256", ""))[:16] + "…", approvals.get(str(i.get("sha256")), "")]
            for i in reel_review.deliverable_rows(review.job)]


def _shot(value: float | int | str | None) -> int:
    text = str(value if value is not None else "").strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit():
        raise UsageError("choose a shot (its number in the list)")
    return int(text)


class ReviewHandlers(Handlers):
    """The Review tab's events (roles: everyone reads; operators decide and release;
    consent officers import the performer's approval); a :class:`Handlers` for its role
    checks and uploads."""

    def _review(self, reel_id: str, language: str) -> reel_review.ReelReview:
        if not (reel_id or "").strip():
            raise UsageError("give the reel's id (see the list of versions)")
        return reel_review.review_of(self.studio.ctx, reel_id.strip(), language)

    def _summary(self, review: reel_review.ReelReview) -> str:
        job = review.job
        text = (f"**{review.reel.reel_id}** in **{html.escape(job.language)}** — "
                f"{len(review.rows)} shots at {review.frame_rate} fps, status "
                f"**{job.status}**; rejected: {review.rejected or 'none'}; to review: "
                f"{review.unreviewed or 'none'}.")
        released = job.deliverables.get("released")
        if isinstance(released, dict):
            text += f" Released by {html.escape(str(released.get('by')))}."
        if review.tampered:  # the decisions shown are the ledger's
            text += f"\n\n**Review records tampered with:** {html.escape(review.tampered)}"
        return text

    def _tables(self, review: reel_review.ReelReview
                ) -> tuple[str, list[list[str]], list[list[str]]]:
        approvals = {}
        for item in review.job.deliverables.get("items", []):
            try:
                status = self.studio.registry.approval_status(str(item["sha256"]))
                approvals[str(item["sha256"])] = status.state.value
            except Exception:  # an output the ledger does not know: shown as unknown
                approvals[str(item["sha256"])] = "unknown"
        return self._summary(review), shot_rows(review), deliverable_rows(review, approvals)

    @requires(*EVERYONE)
    def versions(self, request: gr.Request) -> str:
        found = reel_review.list_versions(self.studio.ctx)
        if not found:
            return "No reel has a rendered language version yet (`studio reel render`)."
        return "Versions: " + ", ".join(f"`{r}` {html.escape(lang)} ({status})"
                                        for r, lang, status in found)

    @requires(*EVERYONE)
    def show(self, reel_id: str, language: str, request: gr.Request
             ) -> tuple[str, list[list[str]], list[list[str]]]:
        return self._tables(self._review(reel_id, language))

    @requires(*EVERYONE)
    def open_shot(self, reel_id: str, language: str, shot: float | int | None,
                  request: gr.Request) -> tuple[str, str, float, int, int, str, str]:
        """The shot's original and dubbed media for the A/B player (the requester's copies),
        its frame rate and frame count, a caption, and the SHA-256 of the render shown: the
        decision names it, so that a render made since is never approved unseen."""
        media = reel_review.shot_media(self.studio.ctx, (reel_id or "").strip(), language,
                                       _shot(shot))
        who = actor().username
        stem = f"{(reel_id or '').strip()}-s{media.shot:03d}"
        original = self.studio.handoff.give(media.original, who, name=f"{stem}-original.mp4")
        dubbed = self.studio.handoff.give(media.dubbed, who, name=f"{stem}-dubbed.mp4")
        caption = (f"Shot **{media.shot}** from {media.record_tc_in}: {media.frames} frames at "
                   f"{media.frame_rate} fps — left the original, right the dub.")
        return (str(original), str(dubbed), float(media.frame_rate), 0, media.frames,
                caption, media.output_sha256)

    def _decide(self, reel_id: str, language: str, shot: float | int | None, note: str,
                render: str, decision: str
                ) -> tuple[str, str, list[list[str]], list[list[str]]]:
        index = _shot(shot)
        if not (render or "").strip():
            raise UsageError("open the shot in the A/B player first: a decision is about the "
                             "render you watched")
        done = reel_review.decide(self.studio.ctx, reel_review.ShotDecision(
            (reel_id or "").strip(), language, index, decision, note or "",
            actor().ledger_name, render.strip()))
        message = (f"Shot **{done.shot}** {done.decision.value} by "
                   f"{html.escape(done.reviewer)}"
                   + (f": {html.escape(done.note)}" if done.note else "") + ".")
        return (message, *self._tables(self._review(reel_id, language)))

    @requires(*OPERATOR)
    def approve(self, reel_id: str, language: str, shot: float | int | None, note: str,
                render: str, request: gr.Request
                ) -> tuple[str, str, list[list[str]], list[list[str]]]:
        return self._decide(reel_id, language, shot, note, render, "approved")

    @requires(*OPERATOR)
    def reject(self, reel_id: str, language: str, shot: float | int | None, note: str,
               render: str, request: gr.Request
               ) -> tuple[str, str, list[list[str]], list[list[str]]]:
        return self._decide(reel_id, language, shot, note, render, "rejected")

    @requires(*OPERATOR)
    def publish(self, reel_id: str, language: str, request: gr.Request) -> str:
        done = reel_review.publish(self.studio.ctx, (reel_id or "").strip(), language,
                                   actor().ledger_name)
        return (f"Released **{done.reel_id}** in {html.escape(done.language)} (ledger entry "
                f"{done.ledger_index}): "
                + ", ".join(f"{i['kind']} `{Path(str(i['path'])).name}`" for i in done.items))

    @requires(*OFFICER)
    def import_approval(self, file: Any, reel_id: str, language: str, request: gr.Request
                        ) -> tuple[str, list[list[str]]]:
        """The performer's signed approval (or rejection) of a deliverable, uploaded here:
        what ``studio consent import-approval`` does (:func:`desk.import_approval`)."""
        upload = self._ingest(file, Kind.GRANT, new_request_id("approval"),
                              "signed approval")
        status = desk.import_approval(self.studio.ctx, upload.path.read_bytes(),
                                      officer=actor().ledger_name)
        message = (f"Recorded the performer's decision: output `{status.output_sha256[:16]}…` "
                   f"is now **{status.state.value}**"
                   + ("" if status.deliverable else " (not deliverable)") + ".")
        rows: list[list[str]] = []
        if (reel_id or "").strip():
            rows = self._tables(self._review(reel_id, language))[2]
        return message, rows


def review_tab(studio: Studio, languages: list[str]) -> None:
    """The Review tab and its events; called inside the studio's ``gr.Tabs``."""
    h = ReviewHandlers(studio)
    with gr.Tab("Review", id="review", elem_id="tab-review"):
        gr.Markdown("Everyone signed in reads a reel's review; operators approve or reject "
                    "shots and release the version; consent officers import the performer's "
                    "signed approval. A rejected shot holds the whole reel back.",
                    elem_classes=["studio-role-note"])
        versions = gr.Markdown(elem_id="review-versions")
        with gr.Row():
            reel = gr.Textbox(label="Reel", elem_id="review-reel")
            language = gr.Dropdown(languages, value="fr", label="Language",
                                   allow_custom_value=True, elem_id="review-language")
            load = gr.Button("Show review", variant="primary", elem_id="review-load")
            refresh = gr.Button("List versions", size="sm", elem_id="review-list")
        summary = gr.Markdown(elem_id="review-summary")
        shots = gr.Dataframe(headers=SHOT_HEADERS, label="Shots", interactive=False,
                             wrap=True, elem_id="review-shots")
        with gr.Row():
            shot = gr.Number(label="Shot", precision=0, value=0, elem_id="review-shot")
            open_ = gr.Button("Open in the A/B player", elem_id="review-open")
        caption = gr.Markdown(elem_id="review-caption")
        # The render the players show: what a decision names (filled by "Open").
        render = gr.Textbox(label="Render shown (SHA-256)", interactive=False,
                            elem_id="review-render")
        with gr.Row():
            a = gr.Video(label="Original", interactive=False, elem_id="review-a",
                         autoplay=False, loop=False)
            b = gr.Video(label="Dub", interactive=False, elem_id="review-b", autoplay=False,
                         loop=False)
        with gr.Row():
            back = gr.Button("◀ 1 frame", size="sm", elem_id="review-back")
            play = gr.Button("▶ Play both", size="sm", elem_id="review-play")
            pause = gr.Button("❚❚ Pause both", size="sm", elem_id="review-pause")
            forward = gr.Button("1 frame ▶", size="sm", elem_id="review-forward")
            frame = gr.Number(label="Frame", precision=0, value=0, interactive=False,
                              elem_id="review-frame")
            frames = gr.Number(label="Frames", precision=0, value=0, interactive=False,
                               elem_id="review-frames")
            fps = gr.Number(label="Frame rate", value=0, interactive=False,
                            elem_id="review-fps")
        with gr.Row():
            note = gr.Textbox(label="Note (required to reject)", elem_id="review-note")
            approve = gr.Button("Approve shot", elem_id="review-approve")
            reject = gr.Button("Reject shot", variant="stop", elem_id="review-reject")
        decided = gr.Markdown(elem_id="review-decision")
        gr.Markdown("### Deliverables and the performer's approval")
        deliverables = gr.Dataframe(headers=DELIVERABLE_HEADERS, label="Deliverables",
                                    interactive=False, wrap=True,
                                    elem_id="review-deliverables")
        with gr.Row():
            approval = gr.File(label="Performer's signed approval (.json)",
                               elem_id="review-approval-file")
            upload = gr.Button("Import approval", elem_id="review-approval-import")
            publish = gr.Button("Release for delivery", variant="primary",
                                elem_id="review-publish")
        released = gr.Markdown(elem_id="review-result")

    refresh.click(h.versions, None, versions, api_name="review_versions")
    load.click(h.show, [reel, language], [summary, shots, deliverables],
               api_name="review_reel")
    open_.click(h.open_shot, [reel, language, shot],
                [a, b, fps, frame, frames, caption, render], api_name="review_open_shot")
    back.click(None, [fps, frame, frames], frame, js=_step_js(-1))
    forward.click(None, [fps, frame, frames], frame, js=_step_js(1))
    play.click(None, [fps, frame], frame, js=PLAY_JS)
    pause.click(None, [fps, frame], frame, js=PAUSE_JS)
    approve.click(h.approve, [reel, language, shot, note, render],
                  [decided, summary, shots, deliverables], api_name="review_approve_shot")
    reject.click(h.reject, [reel, language, shot, note, render],
                 [decided, summary, shots, deliverables], api_name="review_reject_shot")
    upload.click(h.import_approval, [approval, reel, language], [released, deliverables],
                 api_name="import_approval")
    publish.click(h.publish, [reel, language], released, api_name="review_publish")


def _step_js(delta: int) -> str:
    """Step both players ``delta`` frames from the frame shown (paused, at the reel's rate)."""
    return ("(fps, frame, frames) => { " + _VIDEOS + _SEEK +
            " if (!fps) return frame;"
            " const cur = v.length ? Math.floor(v[0].currentTime * fps + 1e-6) : frame;"
            f" const f = Math.max(0, Math.min((frames || 1) - 1, cur + ({delta})));"
            " seek(f); return f; }")


__all__ = ["ReviewHandlers", "review_tab"]
