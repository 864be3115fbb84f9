"""Regenerate ``tests/data/musetalk_unet_keys.json``.

Run ``python -m tests.models.make_musetalk_unet_keys`` from the repository root.

The list is derived, not copied: ``diffusers.UNet2DConditionModel`` is built on the ``meta``
device from the reference config of ``musetalkV15/musetalk.json`` (as MODELS.md describes it
and as ``musetalk/models/unet.py`` builds it: ``UNet2DConditionModel(**config)``), and every
``state_dict()`` entry's name and shape is written out. A public ``unet.pth`` loads with
``strict=True`` exactly when its keys and shapes equal this list.
"""

from __future__ import annotations

import json
from pathlib import Path

import diffusers

from pipelines.lipsync.musetalk_net import REFERENCE_UNET_CONFIG, build_unet

TARGET = Path(__file__).resolve().parents[1] / "data" / "musetalk_unet_keys.json"


def main() -> None:
    unet = build_unet(REFERENCE_UNET_CONFIG, device="meta")
    keys = {name: list(t.shape) for name, t in unet.state_dict().items()}
    document = {
        "derivation": "state_dict() names and shapes of diffusers.UNet2DConditionModel built "
                      "on the meta device from the reference musetalk.json config below "
                      f"(diffusers {diffusers.__version__}); regenerate with "
                      "`python -m tests.models.make_musetalk_unet_keys`",
        "config": REFERENCE_UNET_CONFIG,
        "parameters": sum(int(t.numel()) for t in unet.state_dict().values()),
        "keys": keys,
    }
    TARGET.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"{TARGET}: {len(keys)} tensors, {document['parameters']:,} parameters")


if __name__ == "__main__":
    main()
