"""Frames per second of the LivePortrait networks at the full configuration, random weights.

One frame = what a video source costs per output frame: F and M on the source crop, the
keypoint algebra and stitching, W and G (the driver's M runs once per driver frame in
``prepare`` and is counted too). Random weights run exactly the same arithmetic as trained ones.
``bench.neural.bench_liveportrait`` calls :func:`bench`.
"""

from __future__ import annotations

import time

import torch

from pipelines.reenact.liveportrait.camera import transform_keypoints
from pipelines.reenact.liveportrait.config import FULL, LivePortraitConfig
from pipelines.reenact.liveportrait.models import LivePortraitModels

__all__ = ["bench", "frame_step"]


def frame_step(models: LivePortraitModels, images: torch.Tensor) -> torch.Tensor:
    """One batch of frames through F, M (source and driver), stitching, W and G."""
    features = models.extract_features(images)
    src = models.extract_motion(images)
    drv = models.extract_motion(images)
    x_s = src.keypoints()
    exp = src.exp + (drv.exp - drv.exp.flip(0))
    x_d = transform_keypoints(src.kp, src.rotation, exp, src.scale, src.t)
    with torch.inference_mode():
        x_d = models.stitching.stitch(x_s.float(), x_d.float())
    return models.warp_decode(features, x_s, x_d)


def bench(device: str, dtype: torch.dtype, batch_sizes: list[int], *,
          config: LivePortraitConfig = FULL, repeats: int = 3, warmup: int = 1
          ) -> list[dict[str, object]]:
    """Rows ``{backend, device, dtype, batch, fps, ms_per_frame}``, one per batch size."""
    models = LivePortraitModels.random(config, device=device, dtype=dtype)
    size = config.input_size
    rows: list[dict[str, object]] = []
    dev = torch.device(device)
    for batch in batch_sizes:
        images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        for _ in range(warmup):
            frame_step(models, images)
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            frame_step(models, images)
        sync()
        seconds = (time.perf_counter() - start) / (repeats * batch)
        rows.append({"backend": "liveportrait", "device": device,
                     "dtype": str(dtype).removeprefix("torch."), "batch": batch,
                     "fps": round(1.0 / seconds, 3), "ms_per_frame": round(seconds * 1e3, 2)})
    return rows


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    dtypes = [torch.float32] if device == "cpu" else [torch.float16, torch.float32]
    for dt in dtypes:
        for row in bench(device, dt, [1] if device == "cpu" else [1, 8, 16],
                         repeats=2 if device == "cpu" else 5):
            print(json.dumps(row), flush=True)
