"""Neural backends: frames per second at the FULL configuration with random weights.

Run from the repository root::

    .venv/bin/python bench/neural.py                          # every backend, CPU (+ CUDA if any)
    .venv/bin/python bench/neural.py --backend musetalk       # one backend
    .venv/bin/python bench/neural.py --gpu-only               # CUDA only, quick (≤ 3 minutes)

Per backend one function ``bench_<backend>(device, dtype, batch_sizes, repeats=…)`` returning
rows ``{backend, device, dtype, batch, fps, ms_per_frame, …}``; the table is printed and all
rows go to ``bench/out/neural.json``. CPU: fp32, batch 1, a few frames. CUDA: fp16 and fp32 at
batch 1, 8 and 16 (target for MuseTalk on an H100: ≥ 60 fps at the best batch size).

* **musetalk** — :class:`pipelines.lipsync.musetalk_net.MuseTalkNet` built from the reference
  configs (UNet of ``musetalk.json``, sd-vae-ft-mse, whisper-tiny encoder), weights random
  (``randomize_``): per frame, one 256×256 crop through VAE-encode (masked + reference), one
  UNet pass and VAE-decode, uint8 in and out (host ↔ device copies included). The whisper
  encoder runs once per 30 s of audio (750 frames at 25 fps): its cost per frame is reported
  apart (``whisper_ms_per_frame``). Cropping and blending (OpenCV, on the CPU) are not counted.
* **liveportrait** — delegated to ``pipelines.reenact.liveportrait.bench.bench`` when that
  module is present (another backend's own benchmark; skipped otherwise).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "neural.json"

Row = dict[str, Any]
BenchFn = Callable[..., list[Row]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_musetalk(device: str, dtype: torch.dtype, batch_sizes: list[int], *,
                   repeats: int = 3, warmup: int = 1) -> list[Row]:
    """MuseTalk 1.5 at the full configuration, random weights (module docstring)."""
    from pipelines.lipsync.musetalk_audio import SEGMENT_FRAMES, feature_extractor
    from pipelines.lipsync.musetalk_net import (
        REFERENCE_UNET_CONFIG,
        SD_VAE_FT_MSE_CONFIG,
        WHISPER_TINY_CONFIG,
        MuseTalkNet,
        build_unet,
        build_vae,
        build_whisper_encoder,
        randomize_,
    )

    dev = torch.device(device)
    started = time.perf_counter()
    unet = build_unet(REFERENCE_UNET_CONFIG, device="meta")
    vae = build_vae(SD_VAE_FT_MSE_CONFIG, device="meta")
    whisper = build_whisper_encoder(WHISPER_TINY_CONFIG, device="meta")
    for seed, module in enumerate((unet, vae, whisper)):
        randomize_(module, seed=seed, device=dev)
        if dtype != torch.float32:
            module.to(dtype=dtype)
    net = MuseTalkNet(unet, vae, whisper).to(dev)
    build_s = time.perf_counter() - started

    # whisper: one 30 s segment, per video frame at 25 fps
    mel = torch.from_numpy(np.asarray(feature_extractor()(
        np.zeros(16000 * 30, dtype=np.float32), sampling_rate=16000,
        return_tensors="np").input_features))
    net.audio_features(mel)
    _sync(dev)
    t0 = time.perf_counter()
    net.audio_features(mel)
    _sync(dev)
    whisper_ms = (time.perf_counter() - t0) * 1e3 / (SEGMENT_FRAMES / 2)

    rows: list[Row] = []
    rng = np.random.default_rng(0)
    for batch in batch_sizes:
        crops = rng.integers(0, 256, (batch, 256, 256, 3), dtype=np.uint8)
        audio = torch.randn(batch, 50, 384, generator=torch.Generator().manual_seed(batch))
        try:
            for _ in range(warmup):
                net.generate(crops, audio)
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(repeats):
                net.generate(crops, audio)
            _sync(dev)
        except torch.OutOfMemoryError:
            rows.append({"backend": "musetalk", "device": device,
                         "dtype": str(dtype).removeprefix("torch."), "batch": batch,
                         "fps": None, "ms_per_frame": None, "error": "out of memory"})
            torch.cuda.empty_cache()
            continue
        seconds = (time.perf_counter() - t0) / (repeats * batch)
        row: Row = {"backend": "musetalk", "device": device,
                    "dtype": str(dtype).removeprefix("torch."), "batch": batch,
                    "fps": round(1.0 / seconds, 3), "ms_per_frame": round(seconds * 1e3, 2),
                    "whisper_ms_per_frame": round(whisper_ms, 3),
                    "build_s": round(build_s, 1)}
        if dev.type == "cuda":
            row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
        rows.append(row)
    del net, unet, vae, whisper
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def bench_liveportrait(device: str, dtype: torch.dtype, batch_sizes: list[int], *,
                       repeats: int = 3, warmup: int = 1) -> list[Row]:
    """LivePortrait: delegates to ``pipelines.reenact.liveportrait.bench.bench`` if present."""
    try:
        module = importlib.import_module("pipelines.reenact.liveportrait.bench")
    except ImportError as exc:
        return [{"backend": "liveportrait", "device": device,
                 "dtype": str(dtype).removeprefix("torch."), "batch": None, "fps": None,
                 "ms_per_frame": None, "error": f"not available: {exc}"}]
    rows: list[Row] = module.bench(device, dtype, batch_sizes, repeats=repeats, warmup=warmup)
    return rows


BACKENDS: dict[str, BenchFn] = {"musetalk": bench_musetalk, "liveportrait": bench_liveportrait}


def _table(rows: list[Row]) -> str:
    head = f"{'backend':<13}{'device':<8}{'dtype':<9}{'batch':>6}{'fps':>10}{'ms/frame':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        fps = f"{r['fps']:.2f}" if r.get("fps") is not None else "-"
        ms = f"{r['ms_per_frame']:.1f}" if r.get("ms_per_frame") is not None else "-"
        note = f"  {r['error']}" if r.get("error") else ""
        lines.append(f"{r['backend']:<13}{r['device']:<8}{r['dtype']:<9}"
                     f"{r['batch'] if r['batch'] is not None else '-':>6}{fps:>10}{ms:>10}"
                     f"{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--gpu-only", action="store_true",
                        help="CUDA only, fewer repeats (unattended, ≤ 3 minutes)")
    parser.add_argument("--cpu-frames", type=int, default=2,
                        help="timed frames per CPU measurement (batch 1)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    names = list(BACKENDS) if args.backend == "all" else [args.backend]
    cuda = torch.cuda.is_available()
    if args.gpu_only and not cuda:
        print("--gpu-only: no CUDA device", file=sys.stderr)
        return 2
    plans: list[tuple[str, torch.dtype, list[int], int, int]] = []
    if not args.gpu_only:
        plans.append(("cpu", torch.float32, [1], args.cpu_frames, 1))
    if cuda:
        repeats = 5 if args.gpu_only else 10
        if cuda:
            torch.backends.cudnn.benchmark = True
        plans += [("cuda", torch.float16, [1, 8, 16], repeats, 2),
                  ("cuda", torch.float32, [1, 8, 16], repeats, 2)]
    rows: list[Row] = []
    for name in names:
        for device, dtype, batches, repeats, warmup in plans:
            print(f"{name}: {device} {str(dtype).removeprefix('torch.')} batches {batches} …",
                  flush=True)
            got = BACKENDS[name](device, dtype, batches, repeats=repeats, warmup=warmup)
            for row in got:
                print("  " + json.dumps(row), flush=True)
            rows += got
    print()
    print(_table(rows))
    document = {
        "host": {"python": platform.python_version(), "torch": torch.__version__,
                 "cpu_threads": torch.get_num_threads(),
                 "cuda": torch.cuda.get_device_name(0) if cuda else None},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
