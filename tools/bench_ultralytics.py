"""Ultralytics' own loop on the same weights and clip, for tools/bench.py's side-by-side
comparison:

    YOLO(...).track(source=clip, stream=True, save=True, imgsz=640, half=<on CUDA>, device=…)

(``imgsz``: the ONNX model's input size. Ultralytics letterboxes each frame to the smallest
stride-aligned rectangle, 640×384 for 16:9 video, where the ONNX export runs the whole
640×640 square: its model sees 40% fewer pixels. That is its own loop as users run it.)

It runs in a child process (``run_ultralytics``), possibly under another interpreter
(``--ultralytics-python``): Ultralytics needs torchvision, which cannot sit beside the
development machines' CPU torch, so it can live in a venv of its own. This module is also
that child (``python -m tools.bench_ultralytics …`` prints one JSON object); as the child
it imports nothing from maskstream, only Ultralytics, torch and (for ``.onnx`` weights)
onnx.

The weights: Ultralytics' fused YOLOv8n-seg built from ``yolov8n-seg.yaml`` (offline),
loaded with either the fixtures' state dict (``yolov8n-seg-state.pt``) or the initializers
of ``yolov8n-seg-640.onnx``, whose 153 tensors carry the same names and values (exported
from that state dict; checked tensor by tensor), with ``strict`` loading either way. Class
names come from the ONNX metadata, so labels read as maskstream's do.

Timing: the frames per second from the first result to the last (Ultralytics' model
set-up and first-frame warm-up left out, which favours Ultralytics); ``fps_with_setup``
counts from the call; ``cpu_ms_per_frame`` is the process's CPU time (all threads) over the
same span.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_ultralytics", "ultralytics_problem"]

INSTALL = ("pip install --no-deps ultralytics lap, beside a torch + torchvision pair "
           "(README: Benchmarks), then --ultralytics-python PATH")


def ultralytics_problem(python: str | None) -> str | None:
    """Why the comparison cannot run with ``python`` (None: this interpreter), or None."""
    if python is None:
        return None if importlib.util.find_spec("ultralytics") else (
            f"ultralytics is not importable in {sys.executable}: {INSTALL}")
    if not Path(python).exists():
        return f"--ultralytics-python {python}: no such file"
    return None


def run_ultralytics(python: str | None, weights: Path, names_from: Path, video: Path,
                    device: str, imgsz: int = 640, threads: int = 0,
                    timeout: float = 900) -> dict[str, object]:
    """One timed ``track(stream=True, save=True)`` run in a child process: fps, frames,
    detections per frame, or ``error``. ``threads``: torch CPU threads (0: Ultralytics'
    default)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [python or sys.executable, "-m", "tools.bench_ultralytics", "--weights",
               str(weights), "--names-from", str(names_from), "--video", str(video),
               "--device", device, "--project", tmp, "--threads", str(threads),
               "--imgsz", str(imgsz)]
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": tmp}
        root = str(Path(__file__).resolve().parents[1])
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  cwd=root, env=env, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1].strip()
            if len(tail) > 300:  # e.g. torch's list of every unexpected key
                tail = tail[:300] + " …"
            return {"error": f"exit {done.returncode}: {tail}"}
        return dict(json.loads(lines[-1]))


# --- the child ---------------------------------------------------------------------------

def _state_dict(weights: Path):  # type: ignore[no-untyped-def]
    import torch

    if weights.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(weights))
        if any(i.name.endswith("_quantized") for i in model.graph.initializer):
            raise SystemExit(f"{weights.name} holds quantized weights, which Ultralytics cannot "
                             "load; pass --ultralytics-weights with the float model's state "
                             "dict or .onnx (the fixtures' yolov8n-seg-state.pt)")
        return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
                for i in model.graph.initializer}
    return torch.load(weights, weights_only=True)


def _names(model: Path) -> dict[int, str] | None:
    import onnx

    for prop in onnx.load(str(model), load_external_data=False).metadata_props:
        if prop.key == "names":
            return {int(k): str(v) for k, v in ast.literal_eval(prop.value).items()}
    return None


def _track(args: argparse.Namespace) -> dict[str, object]:
    import torch
    from ultralytics import YOLO

    yolo = YOLO("yolov8n-seg.yaml")
    net = yolo.model.eval()
    net.fuse()
    net.load_state_dict(_state_dict(args.weights))  # strict: every tensor named alike
    names = _names(args.names_from)
    if names:
        net.names = names
    cuda = args.device != "cpu"
    device = args.device.removeprefix("cuda:") if cuda else "cpu"
    options: dict[str, object] = {}
    if cuda:  # fp16; 8.4 renamed half=True to quantize=16 (half still works, with a warning)
        from ultralytics.cfg import DEFAULT_CFG_DICT

        options = {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}
    if args.threads:  # Ultralytics sets torch's CPU threads to min(8, cores - 1) itself
        from ultralytics.utils import torch_utils

        torch_utils.NUM_THREADS = args.threads
    frames, dets = 0, 0
    t0 = time.perf_counter()
    t1, cpu = t0, time.process_time()
    for result in yolo.track(source=str(args.video), stream=True, save=True, imgsz=args.imgsz,
                             device=device, verbose=False, project=args.project,
                             name="track", exist_ok=True, **options):
        if frames == 0:
            t1, cpu = time.perf_counter(), time.process_time()
        frames += 1
        dets += len(result.boxes)
    if cuda:
        torch.cuda.synchronize()
    t2, cpu = time.perf_counter(), time.process_time() - cpu
    import ultralytics

    return {"fps": (frames - 1) / (t2 - t1) if frames > 1 else 0.0,
            "fps_with_setup": frames / (t2 - t0), "frames": frames,
            "cpu_ms_per_frame": cpu * 1000 / (frames - 1) if frames > 1 else 0.0,
            "detections_per_frame": dets / max(1, frames), "fp16": cuda,
            "ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, required=True, help="state dict .pt or the .onnx")
    ap.add_argument("--names-from", type=Path, required=True, help="ONNX with names metadata")
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--project", default=tempfile.gettempdir(), help="where save=True writes")
    ap.add_argument("--imgsz", type=int, default=640, help="the model's input size")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: Ultralytics' own choice, min(8, cores - 1))")
    args = ap.parse_args()
    if args.device == "cuda":
        args.device = "cuda:0"
    print(json.dumps(_track(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
