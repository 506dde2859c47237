#!/usr/bin/env python3
"""Give an ONNX model a dynamic batch dimension, and prove the result batches correctly.

    python -m tools.dynamic_batch IN.onnx OUT.onnx

Most exports fix the batch at 1 (``images [1, 3, H, W]``) and bake that 1 into their
Reshape shapes. This marks dimension 0 of every input and output as ``batch`` and turns
the leading 1 of each Reshape that carries the batch into 0 ("copy the input's dimension"),
where the Reshape's input is computed from the model's input. Then it checks the new model
with ONNX Runtime: a batch of 3 different inputs must give what 3 single runs give.

Models with dynamic quantization (``DynamicQuantizeLinear``) fail that check on purpose:
they compute one quantization range over the whole batch, so a frame's result would depend
on the other frames in its batch, however the model was exported. Quantize statically
(Q/DQ with calibrated ranges) to batch them. Needs ``onnx`` (``pip install onnx``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engines.errors import ModelError

# what other code (the tests, make evaluate) may use; the rest is this script's own
__all__ = ["check_batches", "make_dynamic"]

BATCH = "batch"
CHECK_BATCH = 3


def _shape_const(model, name: str):
    """The value of a Reshape shape given as an initializer or a Constant node; None
    when it is computed at run time."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _input_dependent(model) -> set[str]:
    """Names of the tensors computed from the graph's inputs (not from weights alone)."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    live = {i.name for i in graph.input if i.name not in initializers}
    for node in graph.node:  # ONNX requires nodes in topological order
        if any(name in live for name in node.input):
            live.update(node.output)
    return live


def make_dynamic(model):
    """A copy of ``model`` whose batch dimension is dynamic. Raises ValueError if it
    has no batch-1 input to start from. Assumes the batch is dimension 0 of every
    tensor computed from the input (true of CNN detectors; :func:`check_batches` proves it)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs or not all(i.type.tensor_type.shape.dim and
                             i.type.tensor_type.shape.dim[0].dim_value in (0, 1) for i in inputs):
        raise ModelError("expected inputs with batch 1 (or already dynamic) in dimension 0")
    for vi in (*inputs, *graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = BATCH
    del graph.value_info[:]  # stale batch-1 shapes

    live = _input_dependent(model)
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] not in live:
            continue
        shape = _shape_const(model, node.input[1])
        if shape is None or shape.ndim != 1 or shape.size == 0 or shape[0] != 1:
            continue
        fixed = shape.copy()
        fixed[0] = 0  # 0: copy dimension 0 from the input (allowzero defaults to 0)
        new_name = f"{node.input[1]}__{BATCH}"
        if new_name not in {i.name for i in graph.initializer}:
            graph.initializer.append(numpy_helper.from_array(fixed, new_name))
        node.input[1] = new_name
    onnx.checker.check_model(model)
    return model


def check_batches(path: str | Path, batch: int = CHECK_BATCH, seed: int = 0) -> float:
    """Largest difference between one batched run and ``batch`` single runs, relative to
    the outputs' scale. Raises ValueError where the model will not run batched at all."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its failures come back as exceptions, worded below
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dims = [batch, *(d if isinstance(d, int) else 1 for d in inp.shape[1:])]
    rng = np.random.default_rng(seed)
    x = rng.random(dims, dtype=np.float32)
    try:
        together = session.run(None, {inp.name: x})
    except Exception as exc:  # onnxruntime's own errors
        raise ModelError(f"batch of {batch} fails: {str(exc).splitlines()[0]}") from exc
    worst = 0.0
    for k in range(batch):
        alone = session.run(None, {inp.name: x[k:k + 1]})
        for a, t in zip(alone, together, strict=True):
            if t.shape[0] != batch:
                raise ModelError(f"an output has {t.shape[0]} rows for a batch of {batch}")
            scale = float(np.abs(a).max()) or 1.0
            worst = max(worst, float(np.abs(t[k:k + 1] - a).max()) / scale)
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="ONNX model with a fixed batch")
    ap.add_argument("dst", type=Path, help="where to write the dynamic-batch model")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest relative difference allowed between batched and single runs")
    args = ap.parse_args()
    try:
        import onnx
    except ImportError:
        print("error: tools/dynamic_batch.py needs the onnx package (pip install onnx)", file=sys.stderr)
        return 1
    if not args.src.is_file():
        print(f"error: model file not found: {args.src}", file=sys.stderr)
        return 1
    try:
        model = make_dynamic(onnx.load(str(args.src)))
        onnx.save(model, str(args.dst))
        diff = check_batches(args.dst)
    except ValueError as exc:
        print(f"error: {args.src}: {exc}", file=sys.stderr)
        return 1
    if diff > args.tolerance:
        args.dst.unlink()
        quant = any(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node)
        why = (" (it quantizes dynamically: one range over the whole batch)" if quant else "")
        print(f"error: {args.src}: batched results differ from single runs by {diff:.2g}{why}; "
              "nothing written", file=sys.stderr)
        return 1
    print(f"wrote {args.dst}: batch dimension dynamic; a batch of {CHECK_BATCH} matches single "
          f"runs within {diff:.1e} (relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
