"""The consent gate: a pure function from evidence to a Decision.

The evidence is the raw signed bytes the registry holds; the gate parses and verifies every
signature itself on every call, so an edited database row can only ever turn an allow into
a deny. Each rule of CONSENT.md yields a :class:`RuleResult`, allow or deny, and a deny
always carries a sentence a consent officer can act on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import Field, StrictBool, model_validator

from consent import grant_view
from consent.canonical import canonical_bytes
from consent.documents import (
    Grant,
    Model,
    PerformerKey,
    PerformerRecord,
    ProductionKey,
    Revocation,
    SignedDocument,
)
from consent.errors import ConsentError
from consent.fields import (
    AfterDeathPolicy,
    Alteration,
    Channel,
    HumanName,
    Identifier,
    LanguageTag,
    Sha256Hex,
    SignatoryRole,
    Technique,
    Territory,
    format_timestamp,
    language_covers,
    territory_covers,
)
from consent.keys import PublicKey, short_id

#: How far the clock may stand behind the newest ledger event before the gate distrusts it.
CLOCK_SKEW = timedelta(minutes=5)
#: No identity verdict may use a looser threshold than this, whatever its source says: the
#: customary dlib threshold (0.6) already merges two GRID speakers, and ArcFace cosine
#: thresholds sit well below it. A verdict claiming more is doubt, and doubt denies.
MAX_IDENTITY_THRESHOLD = 0.6


class Subject(Model):
    """One identity a render touches: whose likeness, by which technique, on which face track."""

    performer_id: Identifier
    technique: Technique
    track_id: Identifier | None = None

    @model_validator(mode="after")
    def _face_needs_track(self) -> Self:
        # Every technique but voice synthesis touches a face in some footage; that face must
        # be named so that the identity rule can be applied to it.
        if self.technique is not Technique.VOICE_SYNTHESIS and self.track_id is None:
            raise ValueError(f"a {self.technique.value} subject must name its face track_id")
        return self


class ModelUse(Model):
    """A model the render would run, and what its licence allows (from the model registry)."""

    backend: Identifier
    model: str = Field(min_length=1, max_length=200)
    licence: str = Field(min_length=1, max_length=200)
    commercial_use: StrictBool


class AuthorizedSegment(Model):
    """A run of frames of one face track that a render may edit: every frame lies within the
    short gap allowed between frames verified as ``performer_id`` (the identity trace). In a
    request the grant is unknown (``grant_id`` None); the allow decision lists each segment
    with the grant that covers it, and the edit guard applies edits only inside them."""

    track_id: Identifier
    first_frame: int = Field(ge=0)
    last_frame: int = Field(ge=0)
    performer_id: Identifier
    grant_id: Identifier | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last_frame < self.first_frame:
            raise ValueError("a segment's last frame comes before its first")
        return self


#: Techniques that edit a face in the footage (their subjects' edits need segments).
FACE_EDITS = frozenset({Technique.LIP_SYNC, Technique.FACE_REENACTMENT})


class AuthorizationRequest(Model):
    operation: Identifier
    project_id: Identifier
    episode: Identifier | None = None
    scene: Identifier | None = None
    language: LanguageTag
    territory: Territory
    channel: Channel
    alteration: Alteration
    subjects: tuple[Subject, ...] = Field(min_length=1, max_length=64)
    source_media_sha256: Sha256Hex | None = None
    script_sha256: Sha256Hex | None = None
    ai_training: StrictBool = False
    unmatched_faces: Literal["leave_untouched", "deny"] = "leave_untouched"
    commercial: StrictBool = True
    models: tuple[ModelUse, ...] = Field(default=(), max_length=16)
    operator: HumanName
    #: The (track, frame range) runs the render asks to edit, from the identity trace. Empty
    #: in requests that edit no footage frame by frame (a check without a shot analysis).
    segments: tuple[AuthorizedSegment, ...] = Field(default=(), max_length=4096)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(canonical_bytes(self.model_dump(mode="json"))).hexdigest()


class IdentityMatch(Model):
    """The face matcher's verdict for one track (computed over many frames, issue 3)."""

    track_id: Identifier
    performer_id: Identifier | None = None
    distance: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    threshold: float = Field(gt=0, allow_inf_nan=False)
    margin: float | None = Field(default=None, allow_inf_nan=False)
    min_margin: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    frames: int = Field(default=1, ge=1)


@dataclass(frozen=True)
class PerformerEvidence:
    """Everything the registry holds for one performer, as stored (raw signed bytes)."""

    performer_id: str
    records: Sequence[bytes] = ()
    keys: Sequence[bytes] = ()
    grants: Sequence[bytes] = ()
    revocations: Sequence[bytes] = ()
    #: Grant and key ids that the ledger records as revoked. A revocation in the ledger
    #: whose document has vanished from the registry means tampering: the grant is refused.
    ledger_revoked: frozenset[str] = frozenset()
    #: How many revisions of the performer record the ledger has seen: a newer revision
    #: (say, "minor until 2030") that has vanished from the registry means tampering.
    ledger_record_revisions: int = 0
    #: Registry-signed production-key bindings (for countersignatures).
    production_keys: Sequence[bytes] = ()
    #: Tampering the registry found comparing rows with ledger leaves and checkpoints
    #: (a row without its leaf, a leaf without its row, a truncated log): each denies.
    provenance_problems: Sequence[str] = ()


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    detail: str
    performer_id: str | None = None
    grant_id: str | None = None
    track_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class GrantRef:
    grant_id: str
    sha256: str
    performer_id: str
    technique: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    decided_at: datetime
    request: AuthorizationRequest
    rules: tuple[RuleResult, ...]
    grants_used: tuple[GrantRef, ...]
    identities: tuple[IdentityMatch, ...]
    untouched_tracks: tuple[str, ...] = ()
    decision_id: str = ""
    ledger_index: int | None = None
    #: What an allow decision authorises: the request's segments, each with its grant
    #: (empty when denied). Part of :meth:`content_bytes`, hence of the ledger leaf.
    segments: tuple[AuthorizedSegment, ...] = ()

    @property
    def reasons(self) -> list[str]:
        return [r.detail for r in self.rules if not r.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "allowed": self.allowed,
            "decided_at": format_timestamp(self.decided_at),
            "request": self.request.model_dump(mode="json"),
            "request_sha256": self.request.sha256,
            "rules": [r.to_json() for r in self.rules],
            "reasons": self.reasons,
            "grants_used": [g.__dict__ for g in self.grants_used],
            "identities": [m.model_dump(mode="json") for m in self.identities],
            "untouched_tracks": list(self.untouched_tracks),
            "segments": [g.model_dump(mode="json") for g in self.segments],
            "ledger_index": self.ledger_index,
        }

    def content_bytes(self) -> bytes:
        """Canonical bytes of the decision; their hash goes into the ledger leaf."""
        body = self.to_json()
        body.pop("ledger_index")
        return canonical_bytes(body)


# --------------------------------------------------------------------------- evaluation


@dataclass
class VerifiedFacts:
    """The performer-level facts that survived signature verification."""

    record: PerformerRecord | None = None
    keys: dict[str, PerformerKey] = field(default_factory=dict)
    revoked_grants: dict[str, Revocation] = field(default_factory=dict)
    revoked_keys: dict[str, Revocation] = field(default_factory=dict)
    #: Production countersigning keys bound by the registry, by key id.
    production: dict[str, ProductionKey] = field(default_factory=dict)
    #: Doubts that make every grant of the performer unusable (fail closed).
    fatal: list[str] = field(default_factory=list)


def verified_facts(ev: PerformerEvidence, registry_key: PublicKey) -> VerifiedFacts:
    out = VerifiedFacts()
    out.fatal.extend(ev.provenance_problems)
    for raw in ev.production_keys:
        try:
            pdoc = SignedDocument.from_bytes(raw, ProductionKey)
            pdoc.verify(registry_key)
        except ConsentError:
            continue  # not a key the registry vouches for: its countersignatures count for nothing
        out.production[pdoc.payload.key_id] = pdoc.payload
    latest: PerformerRecord | None = None
    for raw in ev.records:
        try:
            doc = SignedDocument.from_bytes(raw, PerformerRecord)
            doc.verify(registry_key)
        except ConsentError as exc:
            out.fatal.append(f"a performer record for {ev.performer_id} fails verification: "
                                f"{exc.message}")
            continue
        if doc.payload.performer_id != ev.performer_id:
            out.fatal.append(f"a performer record filed under {ev.performer_id} is for "
                                f"{doc.payload.performer_id}")
        elif latest is None or doc.payload.revision > latest.revision:
            latest = doc.payload
    out.record = latest
    held = 0 if latest is None else latest.revision
    if held < ev.ledger_record_revisions:
        out.fatal.append(f"the ledger records {ev.ledger_record_revisions} revision(s) of "
                         f"{ev.performer_id}'s record but the registry holds a verified record "
                         f"only up to revision {held} (tampering?)")
    for raw in ev.keys:
        try:
            kdoc = SignedDocument.from_bytes(raw, PerformerKey)
            kdoc.verify(registry_key)
        except ConsentError:
            # An unverifiable key binding is simply not a key of this performer: grants it
            # signed then fail rule 1 with their own reason.
            continue
        if kdoc.payload.performer_id == ev.performer_id:
            out.keys[kdoc.payload.key_id] = kdoc.payload
    for raw in ev.revocations:
        try:
            rdoc = SignedDocument.from_bytes(raw, Revocation)
            _verify_revocation(rdoc, out.keys, registry_key)
        except ConsentError as exc:
            # A revocation we cannot verify is doubt about this performer: fail closed.
            out.fatal.append(f"a revocation on file for {ev.performer_id} cannot be "
                                f"verified ({exc.message}); refusing to rely on their grants")
            continue
        target = rdoc.payload.target
        (out.revoked_grants if target.kind == "grant" else out.revoked_keys)[target.id] = (
            rdoc.payload
        )
    return out


def _verify_revocation(
    doc: SignedDocument[Revocation], keys: Mapping[str, PerformerKey], registry_key: PublicKey
) -> None:
    """A revocation counts when signed by the registry (officer) or any key of the performer."""
    if doc.payload.issued_by.role == "consent_officer":
        doc.verify(registry_key)
        return
    for sig in doc.signatures:
        if sig.keyid in keys:
            doc.verify(keys[sig.keyid].key)
            return
    raise ConsentError("revocation is not signed by any key registered to the performer")


def countersignature_problem(doc: SignedDocument[Grant], performer_keyid: str,
                             production: Mapping[str, ProductionKey], *,
                             verify: bool = True) -> str | None:
    """Every signature besides the performer's must be a valid countersignature by a key
    the registry bound to the grantee company; returns what is wrong, or None."""
    return _countersignature_problem(doc.payload.grantee.company,
                                     [s.keyid for s in doc.signatures], performer_keyid,
                                     production, doc.verify if verify else None)


def _countersignature_problem(company: str, key_ids: Sequence[str], performer_keyid: str,
                              production: Mapping[str, ProductionKey],
                              verify: Callable[[PublicKey], object] | None) -> str | None:
    for keyid in key_ids:
        if keyid == performer_keyid:
            continue
        pk = production.get(keyid)
        if pk is None:
            return f"countersigned by {short_id(keyid)}, which is no registered production key"
        if pk.company != company:
            return (f"countersigned with a key of {pk.company}, but the grantee is {company}")
        if verify is not None:
            try:
                verify(pk.key)
            except ConsentError:
                return f"countersignature by {short_id(keyid)} does not verify"
    return None


def _short(grant_id: str) -> str:
    return grant_id if len(grant_id) <= 24 else grant_id[:20] + "…"


def _check_grant(
    raw: bytes,
    subject: Subject,
    request: AuthorizationRequest,
    facts: VerifiedFacts,
    now: datetime,
    ledger_revoked: frozenset[str],
    *,
    verify: bool = True,
) -> tuple[list[RuleResult], GrantRef | None]:
    """Every rule for one grant. ``verify=False`` skips only the Ed25519 checks, to rank
    candidates cheaply; a grant is never *used* without a full check. The grant is read
    through :mod:`consent.grant_view` (parsed once per exact bytes, by their hash); the
    GrantRef (with the canonical payload's hash) comes only from a full check."""
    pid = subject.performer_id

    def result(rule: str, passed: bool, detail: str, gid: str | None) -> RuleResult:
        return RuleResult(rule, passed, detail, pid, gid, subject.track_id)

    try:
        g = grant_view.parse(raw)
    except ConsentError as exc:
        return [result("signature", False, f"a stored grant for {pid} is unreadable: "
                       f"{exc.message}", None)], None
    gid = g.grant_id
    tag = f"grant {_short(gid)}"
    rules: list[RuleResult] = []

    # Rule 1: signed, now, by a key the registry bound to this performer.
    signer = next((kid for kid, _sig in g.signatures if kid in facts.keys), None)
    if g.performer_id != pid:
        return [result("signature", False, f"{tag} is for performer {g.performer_id},"
                       f" not {pid}", gid)], None
    if signer is None:
        return [result("signature", False, f"{tag} is not signed by any key registered to "
                       f"{pid}", gid)], None
    key = facts.keys[signer]
    doc_sha256 = ""
    try:
        if verify:
            doc_sha256 = grant_view.verify(g, raw, key.key)
    except ConsentError:
        return [result("signature", False, f"{tag}: signature by {short_id(key.key_id)} does "
                       "not verify over the stored document (altered or forged)", gid)], None
    if g.signed_at > now + CLOCK_SKEW:
        # Import refuses such a grant; one found in the store was put there another way.
        return [result("signature", False, f"{tag} claims to be signed at "
                       f"{format_timestamp(g.signed_at)}, in the future", gid)], None
    if key.holder.role != g.role:
        return [result("signature", False, f"{tag} is signed as {g.role} with a "
                       f"key registered to a {key.holder.role.value}", gid)], None
    problem = _countersignature_problem(
        g.company, [kid for kid, _sig in g.signatures], signer, facts.production,
        (lambda pk: grant_view.verify(g, raw, pk)) if verify else None)
    if problem is not None:
        return [result("signature", False, f"{tag}: {problem}", gid)], None
    rules.append(result("signature", True, f"{tag} signed by {short_id(key.key_id)} "
                        f"({key.holder.role.value})", gid))

    # Rule 2: scope.
    s = g
    rules.append(result(
        "technique", subject.technique in s.techniques,
        f"{tag} covers {subject.technique.value}" if subject.technique in s.techniques
        else f"{tag} does not cover technique {subject.technique.value}", gid))
    project = next((p for p in g.projects if p[0] == request.project_id), None)
    if project is None:
        rules.append(result("project", False, f"{tag} does not cover project "
                            f"{request.project_id}", gid))
    else:
        project_id, episodes, scenes = project
        if episodes and request.episode not in episodes:
            rules.append(result("project", False, f"{tag} covers project {project_id} only "
                                f"for episodes {', '.join(episodes)}; request is for "
                                f"{request.episode or 'no episode'}", gid))
        elif scenes and request.scene not in scenes:
            rules.append(result("project", False, f"{tag} covers project {project_id} only "
                                f"for scenes {', '.join(scenes)}; request is for "
                                f"{request.scene or 'no scene'}", gid))
        else:
            rules.append(result("project", True, f"{tag} covers project {project_id}", gid))
    lang_ok = any(language_covers(lang, request.language) for lang in s.languages)
    rules.append(result("language", lang_ok, f"{tag} covers language {request.language}"
                        if lang_ok else f"{tag} does not cover language {request.language}", gid))
    terr_ok = any(territory_covers(t, request.territory) for t in s.territories)
    rules.append(result("territory", terr_ok, f"{tag} covers territory {request.territory}"
                        if terr_ok else f"{tag} does not cover territory {request.territory}",
                        gid))
    chan_ok = request.channel in s.channels
    rules.append(result("channel", chan_ok, f"{tag} covers channel {request.channel.value}"
                        if chan_ok else f"{tag} does not cover channel {request.channel.value}",
                        gid))
    alt_ok = (s.max_alteration == Alteration.FULL_FACE
              or request.alteration is Alteration.MOUTH_REGION)
    rules.append(result("alteration", alt_ok, f"{tag} allows {request.alteration.value}"
                        if alt_ok else f"{tag} allows only {s.max_alteration}, request "
                        f"needs {request.alteration.value}", gid))
    train_ok = s.ai_training or not request.ai_training
    rules.append(result("ai_training", train_ok, "no AI training requested" if not
                        request.ai_training else (f"{tag} allows AI training" if train_ok else
                        f"{tag} does not allow AI training"), gid))
    if s.script_hash is None:
        rules.append(result("script", True, f"{tag} does not limit the script", gid))
    else:
        script_ok = request.script_sha256 == s.script_hash
        rules.append(result("script", script_ok, f"script matches the approved script of {tag}"
                            if script_ok else f"{tag} approves only script "
                            f"{s.script_hash[:12]}…; request has "
                            f"{(request.script_sha256 or 'none')[:12]}", gid))

    # Rule 3: dates and performer status.
    if now < g.valid_from:
        rules.append(result("validity", False, f"{tag} is not valid before "
                            f"{format_timestamp(g.valid_from)}", gid))
    elif now >= g.valid_until:
        rules.append(result("validity", False, f"{tag} expired at "
                            f"{format_timestamp(g.valid_until)}", gid))
    else:
        rules.append(result("validity", True, f"{tag} valid until "
                            f"{format_timestamp(g.valid_until)}", gid))
    rules.append(_status_rule(gid, g.performer_id, g.role, g.after_death, g.after_death_until,
                              facts.record, now, result, tag))

    # Rule 4: revocation of the grant or of the key that signed it.
    missing = [t for t in (gid, key.key_id) if t in ledger_revoked
               and t not in facts.revoked_grants and t not in facts.revoked_keys]
    if missing:
        rules.append(result("revocation", False, f"the ledger records a revocation of "
                            f"{missing[0][:12]} but its signed document is missing from the "
                            "registry (tampering?)", gid))
    elif gid in facts.revoked_grants:
        r = facts.revoked_grants[gid]
        by = r.issued_by.role.replace("_", " ")
        rules.append(result("revocation", False, f"{tag} was revoked on "
                            f"{format_timestamp(r.revoked_at)} by the {by}", gid))
    elif key.key_id in facts.revoked_keys:
        r = facts.revoked_keys[key.key_id]
        rules.append(result("revocation", False, f"the key {short_id(key.key_id)} that signed "
                            f"{tag} was revoked on {format_timestamp(r.revoked_at)}", gid))
    else:
        rules.append(result("revocation", True, f"{tag} is not revoked", gid))

    # Rule 5: source media.
    if s.source_media == "any":
        rules.append(result("source_media", True, f"{tag} covers any footage of the project",
                            gid))
    else:
        media_ok = request.source_media_sha256 in s.source_media
        rules.append(result("source_media", media_ok, f"{tag} covers this source footage"
                            if media_ok else f"{tag} does not cover source footage "
                            f"{(request.source_media_sha256 or 'unknown')[:12]}", gid))
    return rules, (GrantRef(gid, doc_sha256, pid, subject.technique.value) if verify else None)


_ResultFn = Callable[[str, bool, str, str | None], RuleResult]


def status_problem(g: Grant, record: PerformerRecord | None, now: datetime) -> str | None:
    """Why the performer's status (a minor, deceased) stops ``g`` now, in the gate's words;
    ``None`` when it does not. Listings use it so that they never call "active" a grant the
    gate denies (a minor's own signature)."""
    rule = _status_rule(g.grant_id, g.performer.performer_id, g.signatory.role,
                        g.after_death.policy, g.after_death.until, record, now,
                        lambda r, ok, detail, gid: RuleResult(r, ok, detail),
                        f"grant {_short(g.grant_id)}")
    return None if rule.passed else rule.detail


def _status_rule(gid: str, performer_id: str, role: str, policy: str, until: date | None,
                 record: PerformerRecord | None, now: datetime, result: _ResultFn,
                 tag: str) -> RuleResult:
    # role and policy: enum members (a Grant) or their values (a GrantView); compared by value.
    if record is None:
        return result("status", False, f"no verified performer record for {performer_id}",
                      gid)
    today = now.date()
    if record.deceased_on is not None and record.deceased_on <= today:
        if role == SignatoryRole.ESTATE:
            ok, why = True, "performer deceased; grant signed by the estate"
        elif policy == AfterDeathPolicy.UNTIL_DATE and until is not None:
            ok = today < until
            why = (f"performer deceased; {tag} allows use until {until}" if ok
                   else f"performer deceased; {tag} allowed use only until {until}")
        elif policy == AfterDeathPolicy.ESTATE_CONSENT_REQUIRED:
            ok, why = False, f"performer deceased; {tag} requires an estate grant"
        else:
            ok, why = False, f"performer deceased; {tag} does not extend after death"
        return result("status", ok, why, gid)
    if role == SignatoryRole.ESTATE:
        return result("status", False, f"{tag} is signed by an estate but the performer is "
                      "not recorded as deceased", gid)
    if record.minor_until is not None and today < record.minor_until:
        ok = role == SignatoryRole.GUARDIAN
        return result("status", ok, "performer is a minor; grant signed by a guardian" if ok
                      else f"performer is a minor until {record.minor_until}; {tag} needs a "
                      "guardian signatory", gid)
    return result("status", True, "performer status allows the grant", gid)


def evaluate(
    request: AuthorizationRequest,
    evidence: Mapping[str, PerformerEvidence],
    identity_matches: Sequence[IdentityMatch],
    now: datetime,
    registry_key: PublicKey,
    *,
    last_ledger_time: datetime | None = None,
    known_tracks: Sequence[str] = (),
) -> Decision:
    """Apply every gate rule of CONSENT.md to every subject of ``request``.

    ``known_tracks`` lists every face track found in the footage; tracks that no subject
    claims are left untouched (or deny, per ``request.unmatched_faces``).
    """
    rules: list[RuleResult] = []
    used: list[GrantRef] = []

    if now.tzinfo is None or now.utcoffset() is None:
        rules.append(RuleResult("clock", False, "the decision time has no time zone"))
    elif last_ledger_time is not None and now < last_ledger_time - CLOCK_SKEW:
        rules.append(RuleResult("clock", False, f"the clock reads {format_timestamp(now)}, "
                                "earlier than the newest ledger event "
                                f"({format_timestamp(last_ledger_time)}); clock is untrusted"))
    else:
        rules.append(RuleResult("clock", True, f"decision time {format_timestamp(now)}"))
    if any(r.rule == "clock" and not r.passed for r in rules):
        return Decision(False, now, request, tuple(rules), (), tuple(identity_matches))

    matches: dict[str, IdentityMatch] = {}
    for m in identity_matches:
        if m.track_id in matches:
            rules.append(RuleResult("identity", False, f"track {m.track_id} has two identity "
                                    "verdicts", track_id=m.track_id))
        matches[m.track_id] = m

    claimed: set[str] = set()
    facts_cache: dict[str, VerifiedFacts] = {}
    for subject in request.subjects:
        pid = subject.performer_id
        if subject.track_id is not None:
            claimed.add(subject.track_id)
            rules.append(_identity_rule(subject, matches.get(subject.track_id)))
        ev = evidence.get(pid)
        if ev is None:
            rules.append(RuleResult("signature", False, f"performer {pid} is not registered",
                                    pid, None, subject.track_id))
            continue
        facts = facts_cache.get(pid) or verified_facts(ev, registry_key)
        facts_cache[pid] = facts
        if facts.fatal:
            for p in facts.fatal:
                rules.append(RuleResult("registry", False, p, pid, None, subject.track_id))
            continue
        rules.extend(_best_grant(ev, subject, request, facts, now, used))

    for track_id in sorted(set(matches) | set(known_tracks)):
        if track_id in claimed:
            continue
        if request.unmatched_faces == "deny":
            rules.append(RuleResult("unmatched_faces", False, f"face track {track_id} is not a "
                                    "consented subject of this render and the project denies "
                                    "renders with other faces", track_id=track_id))
        else:
            rules.append(RuleResult("unmatched_faces", True, f"face track {track_id} is not a "
                                    "consented subject; it will be left untouched",
                                    track_id=track_id))
    for model in request.models:
        if request.commercial and not model.commercial_use:
            rules.append(RuleResult("model_licence", False, f"{model.backend} ({model.model}) is "
                                    f"licensed {model.licence}, which does not allow commercial "
                                    "use; this is a commercial project"))
        else:
            rules.append(RuleResult("model_licence", True, f"{model.backend} ({model.model}): "
                                    f"{model.licence}"))
    rules.extend(_segment_rules(request))
    untouched = tuple(sorted((set(matches) | set(known_tracks)) - claimed))
    allowed = all(r.passed for r in rules)
    segments = _authorized_segments(request, used) if allowed else ()
    return Decision(allowed, now, request, tuple(rules), tuple(used) if allowed else (),
                    tuple(identity_matches), untouched, segments=segments)


def _segment_rules(request: AuthorizationRequest) -> list[RuleResult]:
    """Each segment must belong to a face subject of the request (same track, same performer),
    and, once any segment is named, every face subject needs at least one."""
    if not request.segments:
        return []
    faces = {s.track_id: s for s in request.subjects
             if s.technique in FACE_EDITS and s.track_id is not None}
    rules: list[RuleResult] = []
    for seg in request.segments:
        subject = faces.get(seg.track_id)
        span = f"frames {seg.first_frame}-{seg.last_frame} of face {seg.track_id}"
        if subject is None:
            rules.append(RuleResult("segments", False, f"{span} are asked for, but face "
                                    f"{seg.track_id} is no consented subject of this render",
                                    seg.performer_id, None, seg.track_id))
        elif subject.performer_id != seg.performer_id:
            rules.append(RuleResult("segments", False, f"{span} are said to show "
                                    f"{seg.performer_id}, but the subject on that face is "
                                    f"{subject.performer_id}", seg.performer_id, None,
                                    seg.track_id))
        elif seg.grant_id is not None:
            rules.append(RuleResult("segments", False, f"{span}: a request cannot name the "
                                    "grant of a segment; the gate assigns it",
                                    seg.performer_id, None, seg.track_id))
    covered = {seg.track_id for seg in request.segments}
    for tid, subject in faces.items():
        if tid not in covered:
            rules.append(RuleResult("segments", False, f"face {tid} has no frame verified as "
                                    f"{subject.performer_id}: nothing of it may be edited",
                                    subject.performer_id, None, tid))
    if not rules:
        frames = sum(s.last_frame - s.first_frame + 1 for s in request.segments)
        rules.append(RuleResult("segments", True, f"{len(request.segments)} segment(s), "
                                f"{frames} frame(s), each on a consented face verified as its "
                                "performer"))
    return rules


def _authorized_segments(request: AuthorizationRequest, used: Sequence[GrantRef]
                         ) -> tuple[AuthorizedSegment, ...]:
    techniques = {s.track_id: s.technique.value for s in request.subjects}
    grants = {(g.performer_id, g.technique): g.grant_id for g in used}
    return tuple(seg.model_copy(update={
        "grant_id": grants[(seg.performer_id, techniques[seg.track_id])]})
        for seg in request.segments)


def _identity_rule(subject: Subject, match: IdentityMatch | None) -> RuleResult:
    pid, tid = subject.performer_id, subject.track_id
    if match is None:
        return RuleResult("identity", False, f"face {tid} has no identity verdict; it cannot be "
                          f"shown to be {pid}", pid, None, tid)
    if match.threshold > MAX_IDENTITY_THRESHOLD:
        return RuleResult("identity", False, f"the identity verdict for face {tid} uses threshold "
                          f"{match.threshold:.3f}, looser than the calibrated maximum "
                          f"{MAX_IDENTITY_THRESHOLD}", pid, None, tid)
    if match.performer_id != pid:
        who = match.performer_id or "no enrolled performer"
        return RuleResult("identity", False, f"face {tid} matches {who}, not {pid}", pid, None,
                          tid)
    if match.distance is None:
        return RuleResult("identity", False, f"the identity verdict for face {tid} names {pid} "
                          "but gives no distance to their templates", pid, None, tid)
    if not match.distance <= match.threshold:
        return RuleResult("identity", False, f"face {tid} is {match.distance:.3f} from {pid}'s "
                          f"templates, beyond the threshold {match.threshold:.3f}", pid, None, tid)
    if match.margin is not None and not match.margin >= match.min_margin:
        return RuleResult("identity", False, f"face {tid} matches {pid} only {match.margin:.3f} "
                          f"better than another performer (needs {match.min_margin:.3f})", pid,
                          None, tid)
    return RuleResult("identity", True, f"face {tid} matches {pid} at distance "
                      f"{match.distance:.3f} (threshold {match.threshold:.3f}, {match.frames} "
                      "frames)", pid, None, tid)


def _best_grant(
    ev: PerformerEvidence,
    subject: Subject,
    request: AuthorizationRequest,
    facts: VerifiedFacts,
    now: datetime,
    used: list[GrantRef],
) -> list[RuleResult]:
    """The rules of the first grant that passes them all, else of the closest candidate."""
    pid = subject.performer_id
    if not ev.grants:
        return [RuleResult("grant", False, f"{pid} has no grant on file", pid, None,
                           subject.track_id)]

    def check(raw: bytes, verify: bool) -> tuple[list[RuleResult], GrantRef | None]:
        return _check_grant(raw, subject, request, facts, now, ev.ledger_revoked, verify=verify)

    # Rank every grant on the cheap rules, then verify signatures in rank order: the first
    # grant that passes everything, signature included, is used. Rank order is (failures,
    # position), so the grants without a failure come first, by position: checking grants
    # by position and fully checking each one without a failure as it comes finds the same
    # grant, and the grants after it cannot change the answer (not even read then).
    prelims: list[tuple[list[RuleResult], int, bytes]] = []
    best: list[RuleResult] | None = None
    for i, raw in enumerate(ev.grants):
        prelim = check(raw, False)[0]
        prelims.append((prelim, i, raw))
        if _failures(prelim):
            continue
        rules, ref = check(raw, True)
        if ref is not None and not _failures(rules):
            used.append(ref)
            return rules
        best = best or rules
    ranked = sorted(prelims, key=lambda c: (_failures(c[0]), c[1]))
    if best is None:
        best = check(ranked[0][2], True)[0]
    others = [next(r.detail for r in prelim if not r.passed)
              for prelim, _, _ in ranked[1:] if _failures(prelim)]
    if others:
        best.append(RuleResult("grant", False, f"{len(others)} other grant(s) of {pid} do not "
                               f"cover the request either: " + "; ".join(others[:5]), pid, None,
                               subject.track_id))
    return best


def _failures(rules: Sequence[RuleResult]) -> int:
    return sum(not r.passed for r in rules)
