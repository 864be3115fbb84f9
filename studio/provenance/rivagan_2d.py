"""RivaGAN's ONNX graphs with their one-frame 3-D convolutions run as 2-D ones.

The invisible-watermark wheel exports RivaGAN as a video model: input ``[N, 3, T, H, W]`` and
``Conv`` nodes whose kernels are ``1×11×11`` with no temporal padding. The studio always feeds
one frame (``T = 1``), and there such a convolution *is* a 2-D ``11×11`` convolution of the
tensor with its time axis squeezed out. onnxruntime runs its 2-D convolution much faster than
its 3-D one (measured on the 2-core machine, per 216×172 working copy: decoder 0.24 → 0.15 s,
encoder 0.18 → 0.14 s), and the decoder is most of a ``studio verify``.

The rewrite replaces each such ``Conv`` by ``Squeeze(axis 2) → Conv (the kernel's single
temporal slice, 4-D) → Unsqueeze(axis 2)`` and changes nothing else, so every other node still
sees the shapes it was exported for; outputs match the original graph to float rounding
(max |Δ| 2e-5 on the decoder's logits; ``tests/provenance/test_rivagan_2d.py``). Only the
shipped graphs (their bytes pinned below) are rewritten; any other graph is used as given.

Rewriting needs the ``onnx`` package (0.3 s to import), so the result is kept in the user's
cache (``pipelines.user_cache``) and a later process reads it back only if its bytes hash to
the value pinned below for the shipped model's bytes: a planted or stale copy is ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

from pipelines.user_cache import cache_dir, keep, read_pinned

REWRITTEN_SHA256: Final = {
    # invisible-watermark 0.2.0: rivagan_decoder.onnx, rivagan_encoder.onnx
    "6b006690cf352fa50a91a0b6d6241dbcded0a9957969e2c0665cf9a7011b3880":
        "c2e2e05c44b17d7c1bee629f44e86837692dac28042798ff4faa20f4654ef2bc",
    "66bc7814fadac7d686105c8ab26c6cf2cc8e40deb83e67bb6ef5b9de9b8ece0d":
        "4317d35ddde4e835172f56f2856af0d31a2b261454660e953075ac2ee5b02e89",
}
"""SHA-256 of a shipped model's bytes → SHA-256 of its rewrite (``rewrite``'s output)."""

MAX_MODEL_BYTES: Final = 16 << 20
TIME_AXIS: Final = 2


class NotRewritable(ValueError):
    """The graph has a convolution that is not a one-frame 2-D one in disguise."""


def session_model(path: Path) -> bytes:
    """The model to give onnxruntime for ``path``: the 2-D rewrite (the kept copy, or made
    now and kept) when ``path`` holds a shipped model whose rewrite is pinned, else
    ``path``'s own bytes. A model of its own (``STUDIO_RIVAGAN_DIR``) is never rewritten: the
    rewrite is checked against the shipped graphs only, and ``onnx`` may refuse a graph that
    onnxruntime runs (a newer IR version). Nor does a failed rewrite stop a read: it only
    costs the speed-up."""
    data = path.read_bytes()
    pinned = REWRITTEN_SHA256.get(hashlib.sha256(data).hexdigest())
    if pinned is None:
        return data
    folder = cache_dir()
    copy = None if folder is None else folder / f"rivagan-2d-{pinned[:16]}.onnx"
    if copy is not None:
        kept = read_pinned(copy, pinned, max_bytes=MAX_MODEL_BYTES)
        if kept is not None:
            return kept
    try:
        rewritten = rewrite(data)
    except Exception:  # onnx missing, or a release that refuses what 1.17 wrote: as shipped
        return data
    if copy is not None:
        keep(copy, rewritten, pinned)  # False: another onnx writes other bytes; used unkept
    return rewritten


def rewrite(data: bytes) -> bytes:
    """``data`` (a serialised ONNX model) with every ``Conv`` over ``[N, C, 1, H, W]`` run as
    a 2-D convolution (module doc). Raises :class:`NotRewritable` when a ``Conv`` has a kernel
    deeper than one frame, temporal padding, stride or dilation, a weight that is not a
    constant of its own, or when the graph has no such ``Conv`` at all."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    nodes: list[Any] = []
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Conv":
            nodes.append(node)
            continue
        weight = weights.get(node.input[1])
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if weight is None or uses[node.input[1]] != 1 or len(weight.dims) != 5:
            raise NotRewritable(f"{node.name}: weight is not a 5-D constant of its own")
        kernel = list(attrs.get("kernel_shape", weight.dims[2:]))
        pads = list(attrs.get("pads", [0] * 6))
        strides = list(attrs.get("strides", [1, 1, 1]))
        dilations = list(attrs.get("dilations", [1, 1, 1]))
        if (kernel[0] != 1 or weight.dims[2] != 1 or pads[0] != 0 or pads[3] != 0
                or strides[0] != 1 or dilations[0] != 1
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            raise NotRewritable(f"{node.name}: not a one-frame convolution")
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight)[:, :, 0],
                                                weight.name))
        flat_in, flat_out = f"{node.output[0]}__2d_in", f"{node.output[0]}__2d_out"
        nodes.append(_squeeze("Squeeze", node.input[0], flat_in, opset, graph))
        nodes.append(helper.make_node(
            "Conv", [flat_in, *node.input[1:]], [flat_out], name=f"{node.name}__2d",
            kernel_shape=kernel[1:], pads=[pads[1], pads[2], pads[4], pads[5]],
            strides=strides[1:], dilations=dilations[1:], group=int(attrs.get("group", 1))))
        nodes.append(_squeeze("Unsqueeze", flat_out, node.output[0], opset, graph))
        rewritten += 1
    if not rewritten:
        raise NotRewritable("no convolution to rewrite")
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString(deterministic=True))


def _squeeze(op: str, source: str, target: str, opset: int, graph: Any) -> Any:
    """``Squeeze``/``Unsqueeze`` of the time axis, in the opset's form (axes an attribute
    before opset 13, an input from 13 on)."""
    from onnx import helper, numpy_helper

    if opset < 13:
        return helper.make_node(op, [source], [target], axes=[TIME_AXIS])
    axes = "__time_axis"
    if all(init.name != axes for init in graph.initializer):
        import numpy as np

        graph.initializer.append(numpy_helper.from_array(np.array([TIME_AXIS], np.int64),
                                                         axes))
    return helper.make_node(op, [source, axes], [target])
