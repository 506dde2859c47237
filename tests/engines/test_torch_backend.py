"""The torch backend against ONNX Runtime on real models and real frames, and the frozen
module's freedom from host synchronizations (a meta-device probe here; the CUDA check
is in test_gpu_engines.py).

Run with ``-s`` to see the figures (max abs difference per output, syncs per model).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from engines import open_engine, read_spec
from engines.select import torch_problem
from engines.spec import ModelSpec, Resize
from pipeline.decode.yolo import DecodeParams, YoloSegDecoder
from pipeline.infer.preprocess import letterbox, stretch, to_tensor
from tests.engines.realdata import best_iou, frames
from tests.helpers import MODELS, needs_fixtures

pytestmark = pytest.mark.skipif(torch_problem(cuda=False) is not None,
                                reason=f"torch backend: {torch_problem(cuda=False)}")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "engines" / "models" / "demo-seg.onnx"
INT8 = MODELS / "yolov8n-seg_int8.onnx"

# model → (video, frames to compare)
CASES = {
    "demo-seg.onnx": ("udacity_solidWhiteRight.mp4", 2),
    "yolov8n-seg-320.onnx": ("udacity_solidWhiteRight.mp4", 3),
    "yolov8n-seg-640.onnx": ("roboflow_example_video_night_street.mp4", 2),
    "yolov8n-seg-random-640.onnx": ("intel_car-detection.mp4", 2),
    "twinlitenet_best.onnx": ("udacity_solidWhiteRight.mp4", 1),
}
RELATIVE_TOLERANCE = 5e-5  # fp32 on the CPU: measured up to 1e-5 of an output's range


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """As in the pipeline on a CPU (one engine per core): no OpenMP spinning between
    torch's threads on a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def model_path(name: str) -> Path:
    return DEMO if name == "demo-seg.onnx" else MODELS / name


def tensors(spec: ModelSpec, images: list[np.ndarray]) -> list[np.ndarray]:
    fit = letterbox if spec.resize is Resize.LETTERBOX else stretch
    return [to_tensor(fit(image, spec.input_wh)[0], spec) for image in images]


@cache
def pair(name: str) -> tuple:
    """(ONNX Runtime engine, torch engine, spec) for a model, made once per session."""
    path = model_path(name)
    ort_engine = open_engine(path, "onnxruntime", "cpu")
    torch_engine = open_engine(path, "torch", "cpu")
    return ort_engine, torch_engine, read_spec(ort_engine, path)


def needs(name: str) -> list:
    return [] if name == "demo-seg.onnx" else [needs_fixtures]


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in CASES])
def test_torch_backend_matches_onnxruntime_on_real_frames(name: str) -> None:
    ort_engine, torch_engine, spec = pair(name)
    video, n = CASES[name]
    worst: dict[str, float] = {}
    for x in tensors(spec, frames(video, n)):
        ref = ort_engine.infer({spec.input_name: x})
        got = torch_engine.infer({spec.input_name: x})
        assert set(got) == set(ref)
        for k, r in ref.items():
            g = got[k]
            assert isinstance(g, torch.Tensor) and g.dtype == torch.float32 and g.shape == r.shape
            diff = float(np.abs(g.numpy() - r).max())
            worst[k] = max(worst.get(k, 0.0), diff)
            assert diff <= RELATIVE_TOLERANCE * float(np.abs(r).max()) + 1e-6, (k, diff)
    print(f"\n{name}: max |torch - onnxruntime| over {n} frames: "
          + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


@needs_fixtures
def test_dequantized_int8_model_matches_its_graph_and_the_int8_detections(tmp_path) -> None:
    """The ConvInteger rewrite: the torch module equals ONNX Runtime running the same
    rewritten graph; its detections match the int8 model's (which also rounds every
    activation to 8 bits, so only detections are comparable there)."""
    import onnx

    from engines.pytorch.onnx_prep import prepare

    rewritten = tmp_path / "int8-dequantized.onnx"
    onnx.save(prepare(onnx.load(str(INT8))), str(rewritten))
    assert not [n for n in onnx.load(str(rewritten)).graph.node if "Integer" in n.op_type]
    int8 = open_engine(INT8, "onnxruntime", "cpu")
    same_graph = open_engine(rewritten, "onnxruntime", "cpu")
    converted = open_engine(INT8, "torch", "cpu")
    spec = read_spec(int8, INT8)
    decode = YoloSegDecoder(spec, DecodeParams())
    worst, ious, missed, found = 0.0, [], 0, 0
    images = frames("udacity_solidWhiteRight.mp4", 6, step=31)
    fit = [letterbox(image, spec.input_wh) for image in images]
    for image, box in fit:
        x = to_tensor(image, spec)
        got = converted.infer({spec.input_name: x})
        ref = same_graph.infer({spec.input_name: x})
        worst = max(worst, *(float(np.abs(got[k].numpy() - ref[k]).max()) for k in ref))
        mine, theirs = decode(got, box), decode(int8.infer({spec.input_name: x}), box)
        best = best_iou(theirs.xyxy, mine.xyxy)
        found += len(theirs)
        missed += int((best < 0.5).sum())
        ious += list(best[best >= 0.5])
    print(f"\nint8 dequantized: max |torch - ORT same graph| {worst:.2e}; vs int8 detections: "
          f"{found - missed}/{found} matched, box IoU mean {np.mean(ious):.3f}")
    assert worst <= RELATIVE_TOLERANCE * 320  # boxes are in input pixels (0..320)
    assert found >= 10 and missed <= found // 10
    assert np.mean(ious) >= 0.9


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in
                                  [*CASES, "yolov8n-seg_int8.onnx"]])
def test_frozen_module_has_no_host_synchronization(name: str) -> None:
    """The probe finds the syncs of the module as converted (so it can see them), and
    none once the shapes are frozen."""
    from engines.pytorch.freeze import freeze
    from engines.pytorch.load import load_module
    from engines.pytorch.syncprobe import find_host_syncs

    loaded = load_module(model_path(name))
    shape = tuple(d if isinstance(d, int) else 1 for d in loaded.inputs[0].shape)
    x = torch.zeros(shape)
    before = find_host_syncs(loaded.module, [x])
    frozen = freeze(loaded.module, [x])
    after = find_host_syncs(frozen, [x])
    kinds = sorted({f"{s.module}:{s.kind}" for s in before})
    print(f"\n{name}: {len(before)} sync sites as converted ({', '.join(kinds)}), "
          f"{len(after)} frozen")
    assert len(before) > 0
    assert after == []  # (that the frozen module computes the same: the tests above)
