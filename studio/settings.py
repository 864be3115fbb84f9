"""Settings: one data folder holds the database, keys, certificates and outputs.

Everything has an embedded default so that a fresh checkout runs with no configuration;
environment variables (``STUDIO_*``) override them for a real deployment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from studio.errors import SettingsError as SettingsError

DEFAULT_ORIGIN = "studio.local/consent-ledger"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    ledger_origin: str = DEFAULT_ORIGIN
    registry_passphrase: bytes | None = None
    #: A local insightface ArcFace model folder (``w600k_r50.onnx`` + its licence file);
    #: when unset, identity embeddings come from dlib's ResNet that ships in a wheel.
    insightface_dir: Path | None = None
    #: C2PA signing: an operator's own certificate chain and key (PEM files). When unset the
    #: studio signs with its local CA's end-entity certificate, created on first use.
    c2pa_chain: Path | None = None
    c2pa_key: Path | None = None
    #: ``module:function`` returning a ``studio.provenance.certificates.SigningIdentity`` (for
    #: a key kept in an HSM or a cloud KMS, signed through a callback).
    c2pa_signer: str | None = None
    #: RFC 3161 timestamp authority; without one a manifest turns Invalid when its signing
    #: certificate expires.
    c2pa_tsa_url: str | None = None
    #: The C2PA SDK validates each signed output before it is published (one more read of it).
    c2pa_verify_after_sign: bool = True
    #: Embed a thumbnail frame in manifests (off: a manifest should not carry a face).
    c2pa_thumbnail: bool = False
    #: Extra trust anchors (PEM) a verifier accepts besides the studio's own root.
    c2pa_trust_anchors: Path | None = None
    #: A CAWG identity assertion naming the studio on every manifest: the chain and key of
    #: an organisation-validated S/MIME certificate (``STUDIO_CAWG_CHAIN`` +
    #: ``STUDIO_CAWG_KEY``; off when unset, see ``certificates.IdentityCredential``).
    cawg_chain: Path | None = None
    cawg_key: Path | None = None
    #: Renders that may run at the same time (the UI's queue; the CLI runs one).
    concurrent_renders: int = 1
    #: x264 settings of rendered outputs.
    render_crf: int = 17
    render_preset: str = "veryfast"
    #: The lip-sync QC of every render (``STUDIO_RENDER_QC``, ``on``/``off``; issue 16,
    #: studio/render/qc_step.py): off only for benches that time the render alone.
    render_qc: bool = True
    #: Longest stretch (seconds) of frames that cannot be verified as the performer (profile,
    #: blur, between two identity samples) that a render may still edit between two verified
    #: frames (``STUDIO_IDENTITY_GAP_S``, 0.1-1 s; the identity trace of studio/identity.py).
    identity_gap_s: float = 1.0
    #: Sealed shot analyses kept for reuse by the next render of the same bytes
    #: (``STUDIO_ANALYSIS_CACHE_MB``; 0 turns it off; studio/render/analysis_cache.py).
    analysis_cache_mb: int = 2048
    #: Public keys (PEM or base64 files) whose motion-file seals a render accepts besides
    #: this registry's own key (say, the key it had before a rotation). The extraction must
    #: still be in this registry's ledger.
    motion_trusted_keys: tuple[Path, ...] = ()
    #: Checkpoint logs of ledger witnesses (``studio ledger witness``) the gate also reads:
    #: a database rolled back behind a witnessed checkpoint is refused.
    witness_logs: tuple[Path, ...] = ()
    #: Where step 4 of a render runs (``studio.executors``): ``local`` (this process, the
    #: default, no Ray) or ``ray`` (tasks on the Ray cluster at ``ray_address``; the data
    #: folder must be on storage every node sees).
    executor: str = "local"
    #: ``ray://host:10001``, ``host:6379`` or ``auto``; None: start a local Ray instance.
    ray_address: str | None = None
    #: What one render task asks the cluster for (``STUDIO_RAY_TASK_CPUS``, ``…_GPUS``,
    #: ``…_MEMORY_MB``) and how often a task whose worker died is run again.
    ray_task_cpus: float = 1.0
    ray_task_gpus: float = 0.0
    ray_task_memory_mb: int = 1024
    ray_max_retries: int = 2
    #: A shot longer than this many frames is split into frame-range tasks of at most this
    #: size (``studio.render.chunks``); 1500 is a minute at 25 fps, so that a task's own
    #: setup (decoding up to its range, the backend's per-track preparation) stays small
    #: beside its rendering, and a retried task redoes at most a minute of work.
    ray_chunk_frames: int = 1500

    @property
    def checkpoint_log_path(self) -> Path:
        """Append-only copy of every signed ledger checkpoint, outside the database."""
        return self.data_dir / "ledger-checkpoints.log"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def registry_key_path(self) -> Path:
        return self.keys_dir / "registry-ed25519.pem"

    @property
    def template_key_path(self) -> Path:
        """AES-256 key that encrypts identity templates at rest."""
        return self.keys_dir / "templates-aes256.key"

    @property
    def c2pa_dir(self) -> Path:
        """The local studio CA and its signing certificate (embedded default)."""
        return self.data_dir / "c2pa"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def outputs_dir(self) -> Path:
        """Published outputs; nothing appears here before step 7 of a render."""
        return self.data_dir / "outputs"

    @property
    def manifests_dir(self) -> Path:
        return self.data_dir / "manifests"

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        data = (data_dir or Path(os.environ.get("STUDIO_DATA", "studio-data"))).resolve()
        url = os.environ.get("STUDIO_DATABASE_URL") or f"sqlite:///{data / 'studio.db'}"
        passphrase = os.environ.get("STUDIO_REGISTRY_PASSPHRASE")
        return cls(
            data_dir=data,
            database_url=url,
            ledger_origin=os.environ.get("STUDIO_LEDGER_ORIGIN", DEFAULT_ORIGIN),
            registry_passphrase=passphrase.encode() if passphrase else None,
            insightface_dir=Path(os.environ["STUDIO_INSIGHTFACE_DIR"])
            if os.environ.get("STUDIO_INSIGHTFACE_DIR") else None,
            c2pa_chain=_path(os.environ.get("STUDIO_C2PA_CHAIN")),
            c2pa_key=_path(os.environ.get("STUDIO_C2PA_KEY")),
            c2pa_signer=os.environ.get("STUDIO_C2PA_SIGNER") or None,
            c2pa_tsa_url=os.environ.get("STUDIO_C2PA_TSA_URL") or None,
            c2pa_trust_anchors=_path(os.environ.get("STUDIO_C2PA_TRUST_ANCHORS")),
            cawg_chain=_path(os.environ.get("STUDIO_CAWG_CHAIN")),
            cawg_key=_path(os.environ.get("STUDIO_CAWG_KEY")),
            c2pa_verify_after_sign=os.environ.get("STUDIO_C2PA_VERIFY_AFTER_SIGN", "1") != "0",
            c2pa_thumbnail=os.environ.get("STUDIO_C2PA_THUMBNAILS", "0") == "1",
            concurrent_renders=_int("STUDIO_CONCURRENT_RENDERS", "1", 1, 64),
            render_crf=_int("STUDIO_RENDER_CRF", "17", 0, 51),
            render_preset=os.environ.get("STUDIO_RENDER_PRESET", "veryfast"),
            render_qc=_choice("STUDIO_RENDER_QC", "on", ("on", "off")) == "on",
            identity_gap_s=_gap(os.environ.get("STUDIO_IDENTITY_GAP_S", "1.0")),
            analysis_cache_mb=_int("STUDIO_ANALYSIS_CACHE_MB", "2048", 0, 1_048_576),
            motion_trusted_keys=tuple(
                p for p in (_path(v) for v in os.environ.get(
                    "STUDIO_MOTION_TRUSTED_KEYS", "").split(os.pathsep)) if p is not None),
            witness_logs=tuple(
                p for p in (_path(v) for v in os.environ.get(
                    "STUDIO_WITNESS_LOGS", "").split(os.pathsep)) if p is not None),
            executor=_choice("STUDIO_EXECUTOR", "local", ("local", "ray")),
            ray_address=os.environ.get("RAY_ADDRESS") or None,
            ray_task_cpus=_float("STUDIO_RAY_TASK_CPUS", "1", 0.0, 256.0),
            ray_task_gpus=_float("STUDIO_RAY_TASK_GPUS", "0", 0.0, 16.0),
            ray_task_memory_mb=_int("STUDIO_RAY_TASK_MEMORY_MB", "1024", 64, 1_048_576),
            ray_max_retries=_int("STUDIO_RAY_MAX_RETRIES", "2", 0, 20),
            ray_chunk_frames=_int("STUDIO_RAY_CHUNK_FRAMES", "1500", 2, 10_000_000),
        )


def _int(name: str, default: str, low: int, high: int) -> int:
    value = os.environ.get(name, default)
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: a whole number, {low} to {high}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name}={value!r}: a whole number, {low} to {high}")
    return number


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in allowed:
        raise SettingsError(f"{name}={value!r}: one of {', '.join(allowed)}")
    return value


def _float(name: str, default: str, low: float, high: float) -> float:
    value = os.environ.get(name, default)
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: a number, {low:g} to {high:g}") from None
    if not low <= number <= high:  # also refuses NaN
        raise SettingsError(f"{name}={value!r}: a number, {low:g} to {high:g}")
    return number


def _gap(value: str) -> float:
    try:
        gap = float(value)
    except ValueError:
        raise SettingsError(f"STUDIO_IDENTITY_GAP_S={value!r}: seconds, 0.1 to 1") from None
    # ``not <=`` also refuses NaN, which compares false with everything.
    if not 0.1 <= gap <= 1.0:
        raise SettingsError(f"STUDIO_IDENTITY_GAP_S={value!r}: seconds, 0.1 to 1")
    return gap


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None
