"""Open the studio's registry from settings, creating the data folder on first use,
and seed the demo performer and grant that ship in ``assets/demo``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from consent.errors import DuplicateError, NotFoundError
from consent.fields import SignatoryRole
from consent.keys import PrivateKey, load_public_key
from consent.registry import Registry
from consent.store import Store
from consent.templates import load_or_create_template_key
from studio.settings import Settings

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO = ASSETS / "demo"
DEMO_PERFORMER_ID = "demo-performer"
DEMO_REFERENCE = ASSETS / "media" / "grid" / "bbaf2n.mpg"
DEMO_OFFICER = "Studio set-up (demo seed)"


@dataclass
class SeedReport:
    actions: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.actions.append(line)


def registry_key(settings: Settings, report: SeedReport | None = None) -> PrivateKey:
    path = settings.registry_key_path
    if path.exists():
        return PrivateKey.load(path, settings.registry_passphrase)
    key = PrivateKey.generate()
    key.save(path, settings.registry_passphrase)
    path.with_suffix(".pub").write_bytes(key.public_key.to_pem())
    if report is not None:
        report.say(f"created the registry signing key {path} (key id {key.key_id[:16]}…)")
    return key


def open_registry(settings: Settings, report: SeedReport | None = None) -> Registry:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = registry_key(settings, report)
    store = Store.open(settings.database_url)
    return Registry(store, key, settings.ledger_origin,
                    template_key=load_or_create_template_key(settings.template_key_path),
                    checkpoint_log=settings.checkpoint_log_path,
                    witness_logs=settings.witness_logs)


def seed_demo(registry: Registry, report: SeedReport) -> None:
    """Register the demo performer and key and import the signed demo grant (idempotent)."""
    # Face stack imported here, not at module level: `studio --help` and the consent and
    # ledger commands import this module and must start without mediapipe or dlib.
    from pipelines.faces.embedding import DlibEmbedder
    from studio.identity import enrol

    try:
        registry.performer(DEMO_PERFORMER_ID)
        report.say(f"demo performer {DEMO_PERFORMER_ID} already registered")
    except NotFoundError:
        registry.register_performer(DEMO_PERFORMER_ID, "Demo Performer (GRID speaker bbaf2n)",
                                    professional_name="Demo Performer", officer=DEMO_OFFICER)
        report.say(f"registered demo performer {DEMO_PERFORMER_ID}")
    public = load_public_key((DEMO / "demo-performer.pub").read_bytes())
    try:
        registry.add_key(DEMO_PERFORMER_ID, public, officer=DEMO_OFFICER,
                         holder_role=SignatoryRole.SELF)
        report.say(f"registered the demo performer's key {public.key_id[:16]}…")
    except DuplicateError:
        report.say("demo performer key already registered")
    try:
        status = registry.import_grant((DEMO / "demo-grant.json").read_bytes(),
                                       officer=DEMO_OFFICER)
        report.say(f"imported demo grant {status.grant_id} ({status.status}, "
                   f"{status.detail})")
    except DuplicateError:
        report.say("demo grant already imported")
    if registry.consented_templates(DlibEmbedder.name).get(DEMO_PERFORMER_ID):
        report.say("demo performer's face already enrolled")
        return
    enrolment = enrol(registry, DEMO_PERFORMER_ID, [DEMO_REFERENCE], DlibEmbedder(),
                      officer=DEMO_OFFICER)
    report.say(f"enrolled the demo performer's face from {DEMO_REFERENCE.name} "
               f"({enrolment.template_count} encrypted templates)")
