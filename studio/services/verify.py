"""What a file is, who signed it, whether its consent still stands, its ledger proof and
its watermark (``studio verify``, the studio's Verify tab)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.errors import InputNotFoundError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from studio.provenance.verify import VerifyReport


def verify(ctx: AppContext, file: Path, *, watermark: bool = True) -> VerifyReport:
    """The file's provenance report (the media stack for the watermark loads here)."""
    from studio.provenance.identity import trust_anchors
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    if not file.is_file():
        raise InputNotFoundError(f"{file}: no such file")
    settings = ctx.settings
    return verify_file(file, ctx.registry, ManifestStore(settings.manifests_dir),
                       trust_anchors_pem=trust_anchors(settings) or None, watermark=watermark)
