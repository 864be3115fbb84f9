"""What the several-speaker reel tests share: a consenting GRID performer, a shot's frames,
and a tap on the renders a reel job starts (the frames as the edit guard leaves them, before
the watermark, and each render's outcome)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import yaml
from numpy.typing import NDArray

from consent.documents import Grant, sign_draft
from consent.keys import PrivateKey
from consent.registry import Registry
from pipelines.faces.embedding import DlibEmbedder
from studio.identity import enrol, sha256_file
from tests.media import mediagen as gen

GRID = gen.ASSETS / "grid"
DEMO = gen.ASSETS.parent / "demo"


def consented(registry: Registry, performer_id: str, name: str, clip: str, grant_id: str,
              *, scope: dict[str, Any] | None = None, register: bool = True) -> None:
    """GRID speaker ``clip`` as a performer: registered (unless ``register`` is false: done
    already), their own key and signed grant (the demo grant's, ``scope`` merged into its
    scope), face enrolled."""
    key = PrivateKey.generate()
    legal = f"{name} Example (GRID speaker {clip})"
    if register:
        registry.register_performer(performer_id, legal, professional_name=name,
                                    officer="Test Officer")
    registry.add_key(performer_id, key.public_key, officer="Test Officer")
    draft: dict[str, Any] = yaml.safe_load((DEMO / "demo-grant.draft.yaml").read_text())
    draft |= {"grant_id": grant_id, "signed_at": "2026-11-30T00:00:00Z",
              "performer": {"performer_id": performer_id, "legal_name": legal,
                            "professional_name": name},
              "signatory": {"role": "self", "name": legal},
              "scope": {**draft["scope"], **(scope or {})},
              # The grant names the reference the face is enrolled from (else no template
              # of theirs is used for matching).
              "evidence": {**draft["evidence"],
                           "identity_template_sha256": [sha256_file(GRID / f"{clip}.mpg")]}}
    doc = sign_draft(Grant, json.loads(json.dumps(draft, default=str)), [key])
    assert registry.import_grant(doc.raw, officer="Test Officer").status == "active"
    enrol(registry, performer_id, [GRID / f"{clip}.mpg"], DlibEmbedder(),
          officer="Test Officer")


def frames(path: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(path)) as c:
        return [np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8)
                for f in c.decode(video=0)]


@dataclass
class RenderTap:
    """Frames by index as the edit guard left them, and the outcomes, of tapped renders."""

    frames: dict[int, NDArray[np.uint8]] = field(default_factory=dict)
    outcomes: list[Any] = field(default_factory=list)


def tap_renders(monkeypatch: pytest.MonkeyPatch) -> RenderTap:
    """Tap every render the reel job starts until ``monkeypatch.undo()``."""
    from studio.services import render as render_service

    tap = RenderTap()
    original = render_service.start_render

    def start_render(*args: Any, **kwargs: Any) -> Any:
        run = original(*args, **kwargs)
        run.job.frame_tap = lambda i, rgb: tap.frames.__setitem__(i, rgb.copy())
        inner = run.run

        def wrapped() -> Any:
            tap.outcomes.append(inner())
            return tap.outcomes[-1]
        run.run = wrapped
        return run

    monkeypatch.setattr(render_service, "start_render", start_render)
    return tap
