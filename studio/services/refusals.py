"""Refusals the gate could not be asked about, recorded in the ledger all the same.

A shot in which no face matches a performer with consent names no subject, so there is no
gate request to decide; after a revocation this is what a render of the performer's shot
meets (their templates are deleted). The refusal is still a decision of record: a deny whose
one rule says why, ledgered like every other (:meth:`consent.registry.Registry.record_refusal`).
"""

from __future__ import annotations

from consent.fields import Channel
from studio.errors import ConsentRefused, NoConsentedFaceError
from studio.render.request import Operation
from studio.services.context import AppContext


def refuse_unconsented_shot(ctx: AppContext, exc: NoConsentedFaceError, *,
                            operation: Operation, project_id: str, language: str,
                            territory: str, channel: Channel, operator: str,
                            source_sha256: str, commercial: bool = True,
                            episode: str | None = None, scene: str | None = None,
                            ) -> ConsentRefused:
    """Ledger the refusal of ``exc`` and return the error that reports it."""
    from studio.render.authorization import choose_backend, refusal_request

    choice = choose_backend(ctx.settings, project_id, operation)
    request = refusal_request(ctx.settings, choice, operation=operation, project_id=project_id,
                              language=language, territory=territory, channel=channel,
                              operator=operator, source_sha256=source_sha256,
                              commercial=commercial, episode=episode, scene=scene)
    decision = ctx.registry.record_refusal(request, exc.matches, exc.message,
                                           known_tracks=exc.tracks)
    return ConsentRefused(f"{exc.message} (refusal recorded: decision {decision.decision_id}, "
                          f"ledger entry {decision.ledger_index})", decision)
