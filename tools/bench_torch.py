"""Model-only speed of the torch backend, for tools/bench.py (or on its own):

    python -m tools.bench_torch --model M.onnx --video V.mp4 [--device cuda]

CUDA: eager and CUDA-graph replay (fp16), batch 1, 8 and 32 (a dynamic-batch copy of the
model is made for batches > 1 where the model has a fixed batch). CPU: eager, batch 1,
one torch thread (as the pipeline runs it). Figures are ms per batch and frames/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from engines import open_engine, parse_device, read_spec
from engines.errors import ModelError

CUDA_BATCHES = (1, 8, 32)


def _dynamic_copy(model: Path, folder: Path) -> Path | None:
    import onnx

    from tools.dynamic_batch import make_dynamic

    try:
        out = folder / f"{model.stem}-dynamic.onnx"
        onnx.save(make_dynamic(onnx.load(str(model))), str(out))
    except (ModelError, ValueError) as exc:  # e.g. a dynamically quantized model
        print(f"  (no batches > 1: {exc})", file=sys.stderr)
        return None
    return out


def _time(engine, name: str, x: torch.Tensor, runs: int) -> float:  # type: ignore[no-untyped-def]
    """Median ms per call over ``runs`` calls, after a warm-up."""
    for _ in range(3):
        engine.infer({name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        engine.infer({name: x})
        if engine.stream is not None:
            engine.stream.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_torch_model_only(model: Path, frame: np.ndarray, name: str, device: str,
                           runs: int = 50) -> list[dict[str, object]]:
    """Rows of {mode, batch, ms, fps}; ``frame`` is one preprocessed [1, 3, H, W] input."""
    dev = parse_device(device)
    rows: list[dict[str, object]] = []
    if not dev.is_cuda:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        engine = open_engine(model, "torch", "cpu")
        ms = _time(engine, name, torch.from_numpy(frame), max(5, runs // 5))
        engine.close()
        torch.set_num_threads(before)
        return [{"mode": "eager fp32, 1 thread", "batch": 1, "ms": ms, "fps": 1000 / ms}]
    with tempfile.TemporaryDirectory() as tmp:
        dynamic = _dynamic_copy(model, Path(tmp))
        for graphs in (False, True):
            for batch in CUDA_BATCHES:
                path = model if batch == 1 else dynamic
                if path is None:
                    continue
                engine = open_engine(path, "torch", str(dev), cuda_graphs=graphs)
                x = torch.from_numpy(frame).to(str(dev)).repeat(batch, 1, 1, 1)
                ms = _time(engine, name, x, runs)
                engine.close()
                rows.append({"mode": f"{'CUDA graph' if graphs else 'eager'} fp16",
                             "batch": batch, "ms": ms, "fps": batch * 1000 / ms})
    return rows


def print_rows(rows: list[dict[str, object]]) -> None:
    print("  model-only, torch backend:")
    for r in rows:
        print(f"    {r['mode']:<24} batch {r['batch']:>3}: {r['ms']:8.2f} ms  "
              f"{r['fps']:9.1f} FPS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--video", required=True, type=Path)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = ap.parse_args()
    from pipeline.infer.preprocess import Preprocess
    from tools.bench_clip import load_frames

    ref = open_engine(args.model, "onnxruntime", "cpu")
    spec = read_spec(ref, args.model)
    ref.close()
    tensor = Preprocess(spec).process(load_frames(args.video, 1)[0]).tensor
    print_rows(bench_torch_model_only(args.model, tensor, spec.input_name, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
