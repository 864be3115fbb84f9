"""``studio models list | verify DIR | where``: the local model registry from the command line.

* ``list`` — every neural backend, its files (published hash or "none published"), and its
  licence (whether a commercial production may run it);
* ``verify DIR`` — check a folder against the manifests (``DIR`` is one backend's folder, or a
  root holding ``<backend>/`` folders); ``--pin`` records the SHA-256 of every file without a
  published hash into ``<models root>/pins.json`` (trust on first use: reported as "pinned
  locally, not a published hash"); later checks and loads compare against the pin;
* ``where`` — the folder the settings expect per backend: ``$STUDIO_MODELS_DIR/<backend>/``,
  else ``<data>/models/<backend>/``.

Exit codes as every ``studio`` command: 0 ok, 1 a failed verification, 4 not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipelines.models import registry
from pipelines.models.registry import FileCheck, PinStore, UnknownBackendError
from studio.cli.common import EXIT_DENY, EXIT_NOT_FOUND, JsonOpt, _emit, _fail, _settings, out

models_app = typer.Typer(help="Local model checkpoints: manifests, hashes, licences.",
                         no_args_is_help=True)

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help=f"One backend ({', '.join(registry.backends())}); default: every "
    "backend whose files DIR holds.")]


def _root() -> Path:
    return registry.models_root(_settings().data_dir)


@models_app.command("list")
def list_models(as_json: JsonOpt = False) -> None:
    """Every backend, its files and its licence."""
    data: list[dict[str, Any]] = []
    for name in registry.backends():
        m = registry.manifest(name)
        lic = m.licence
        data.append({
            "backend": name,
            "description": m.description,
            "code_licence": m.code_licence,
            "licence": lic.licence,
            "commercial": lic.commercial,
            "conditions": lic.conditions,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size,
                       "reported_size": f.reported_size, "licence": f.licence.licence,
                       "commercial": f.licence.commercial, "source": f.source}
                      for f in m.files],
        })

    def human() -> None:
        for entry in data:
            out.print(f"[bold]{entry['backend']}[/] — {entry['description']}")
            out.print(f"  licence: {entry['licence']} (code: {entry['code_licence']}); "
                      f"commercial use: {'yes' if entry['commercial'] else 'NO'}")
            if entry["conditions"]:
                out.print(f"  conditions: {entry['conditions']}")
            table = Table("file", "sha256", "size", "licence")
            for f in entry["files"]:
                size = (f"{f['size']:,}" if f["size"] else
                        f"~{f['reported_size']:,} (reported)" if f["reported_size"] else "?")
                table.add_row(f["path"], f["sha256"] or "none published (pin locally)", size,
                              f["licence"])
            out.print(table)

    _emit(as_json, data, human)


def _backends_in(folder: Path, backend: str | None) -> list[tuple[str, Path]]:
    if backend is not None:
        registry.manifest(backend)
        nested = folder / backend
        if not any((folder / f.path).exists() for f in registry.manifest(backend).files) \
                and nested.is_dir():
            return [(backend, nested)]
        return [(backend, folder)]
    found: list[tuple[str, Path]] = []
    for name in registry.backends():
        files = registry.manifest(name).files
        if any((folder / f.path).exists() for f in files):
            found.append((name, folder))
        elif (folder / name).is_dir():
            found.append((name, folder / name))
    return found


def _check_row(check: FileCheck) -> dict[str, Any]:
    return {"file": check.file.path, "location": str(check.location), "status": check.status,
            "sha256": check.sha256, "expected_sha256": check.expected_sha256,
            "hash_origin": check.hash_origin}


@models_app.command("verify")
def verify_models(
    folder: Annotated[Path, typer.Argument(help="A backend's folder, or a folder of them.")],
    backend: BackendOpt = None,
    pin: Annotated[bool, typer.Option("--pin", help="Record the hashes of files that have no "
                                      "published hash (trust on first use).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a folder's files against the manifests (and pin unpublished hashes)."""
    if not folder.is_dir():
        _fail(EXIT_NOT_FOUND, f"{folder} is not a folder", as_json, "not_found")
    try:
        targets = _backends_in(folder, backend)
    except UnknownBackendError as exc:
        _fail(EXIT_NOT_FOUND, str(exc), as_json, "unknown_backend")
    if not targets:
        _fail(EXIT_NOT_FOUND, f"{folder} holds no files of any known backend "
              f"({', '.join(registry.backends())})", as_json, "not_found")
    pins = PinStore.for_root(_root())
    report: list[dict[str, Any]] = []
    failed = False
    for name, path in targets:
        checks = registry.verify_folder(name, path, pins=pins, pin=pin)
        failed = failed or any(c.failed for c in checks)
        report.append({"backend": name, "folder": str(path),
                       "ok": not any(c.failed for c in checks),
                       "files": [_check_row(c) for c in checks]})

    def human() -> None:
        for entry in report:
            out.print(f"[bold]{entry['backend']}[/] in {entry['folder']}")
            for row in entry["files"]:
                status = row["status"]
                note = {
                    "ok": "matches its published hash",
                    "pinned": f"matches its {registry.PINNED}",
                    "pinned-now": f"{registry.PINNED} (recorded now)",
                    "unverified": "present; no published hash and none pinned (use --pin)",
                    "missing": f"MISSING: it goes at {row['location']}",
                    "size": "WRONG SIZE",
                    "mismatch": f"MISMATCH: expected {row['expected_sha256']} "
                                f"({row['hash_origin']})",
                }[status]
                out.print(f"  {row['file']}: {note}"
                          + (f"\n    sha256 {row['sha256']}" if row["sha256"] else ""),
                          highlight=False)
        if pin:
            out.print(f"pins: {pins.path}")

    _emit(as_json, {"ok": not failed, "backends": report, "pins": str(pins.path)}, human)
    if failed:
        raise typer.Exit(EXIT_DENY)


@models_app.command("where")
def where_models(as_json: JsonOpt = False) -> None:
    """The folder the settings expect for each backend."""
    root = _root()
    folders = {name: str(registry.backend_dir(name, root)) for name in registry.backends()}
    data: dict[str, Any] = {"root": str(root), "pins": str(PinStore.for_root(root).path),
                            "backends": folders}

    def human() -> None:
        out.print(f"models root: {root}  (${registry.MODELS_DIR_ENV}, else <data>/models)",
                  highlight=False)
        for name, path in folders.items():
            out.print(f"  {name}: {path}", highlight=False)

    _emit(as_json, data, human)
