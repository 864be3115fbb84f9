"""Scoring a detected shot list against a hand-labelled one: precision, recall, frame error.

A detected transition matches a labelled one when their frame spans, each widened by
``tolerance`` frames, overlap; each labelled transition matches at most one detected one
(nearest boundary first). Transitions at the reel's very ends (a fade in from black at frame
0, a fade out at the last frame) are scored like the others. Boundary error is
``|detected boundary - labelled boundary|`` over matched pairs; span error is the larger of
the start and end differences (0 for cuts matched to cuts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .shots import ShotList, Transition, TransitionKind


@dataclass(frozen=True)
class KindScore:
    """Counts for one kind of transition (or all of them)."""

    labelled: int
    detected: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.labelled if self.labelled else 1.0


@dataclass(frozen=True)
class DetectionScore:
    """How a detection compares with the labels."""

    overall: KindScore
    by_kind: dict[str, KindScore]
    boundary_errors: tuple[int, ...]
    span_errors: tuple[int, ...]
    kind_confusions: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    missed: tuple[Transition, ...] = field(default_factory=tuple)
    spurious: tuple[Transition, ...] = field(default_factory=tuple)

    @property
    def mean_boundary_error(self) -> float:
        errs = self.boundary_errors
        return sum(errs) / len(errs) if errs else 0.0

    @property
    def max_boundary_error(self) -> int:
        return max(self.boundary_errors, default=0)

    @property
    def max_span_error(self) -> int:
        return max(self.span_errors, default=0)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} P {v.precision:.3f} R {v.recall:.3f} ({v.matched}/{v.labelled})"
                          for k, v in sorted(self.by_kind.items()))
        return (f"precision {self.overall.precision:.3f} recall {self.overall.recall:.3f} "
                f"({self.overall.matched} of {self.overall.labelled} labelled, "
                f"{self.overall.detected} detected); boundary error mean "
                f"{self.mean_boundary_error:.2f} max {self.max_boundary_error} frames, span "
                f"error max {self.max_span_error}; {kinds}; kind confusions "
                f"{len(self.kind_confusions)}")


def score(detected: ShotList | tuple[Transition, ...], labelled: ShotList | tuple[Transition, ...],
          *, tolerance: int = 2) -> DetectionScore:
    """Compare ``detected`` with ``labelled`` (shot lists or their transitions)."""
    found = list(detected.transitions if isinstance(detected, ShotList) else detected)
    truth = list(labelled.transitions if isinstance(labelled, ShotList) else labelled)
    pairs: list[tuple[int, int]] = []
    free = set(range(len(found)))
    for ti, t in enumerate(truth):
        candidates = [fi for fi in free
                      if found[fi].start - tolerance <= t.end + tolerance
                      and t.start - tolerance <= found[fi].end + tolerance]
        if not candidates:
            continue
        best = min(candidates, key=lambda fi: abs(found[fi].boundary - t.boundary))
        free.discard(best)
        pairs.append((ti, best))
    matched_truth = {ti for ti, _ in pairs}
    kinds = {t.kind.value for t in truth} | {f.kind.value for f in found}
    by_kind = {}
    for kind in sorted(kinds):
        by_kind[kind] = KindScore(
            labelled=sum(t.kind.value == kind for t in truth),
            detected=sum(f.kind.value == kind for f in found),
            matched=sum(truth[ti].kind.value == kind and found[fi].kind.value == kind
                        for ti, fi in pairs))
    return DetectionScore(
        overall=KindScore(len(truth), len(found), len(pairs)),
        by_kind=by_kind,
        boundary_errors=tuple(abs(found[fi].boundary - truth[ti].boundary) for ti, fi in pairs),
        span_errors=tuple(_span_error(found[fi], truth[ti]) for ti, fi in pairs),
        kind_confusions=tuple((truth[ti].kind.value, found[fi].kind.value) for ti, fi in pairs
                              if truth[ti].kind is not found[fi].kind),
        missed=tuple(t for ti, t in enumerate(truth) if ti not in matched_truth),
        spurious=tuple(found[fi] for fi in sorted(free)),
    )


def _span_error(found: Transition, truth: Transition) -> int:
    if found.kind is TransitionKind.CUT and truth.kind is TransitionKind.CUT:
        return 0
    return max(abs(found.start - truth.start), abs(found.end - truth.end))
