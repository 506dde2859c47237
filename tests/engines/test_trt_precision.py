"""FP16 and INT8 ONNX rewrites with NVIDIA Model Optimizer, checked on the CPU against the
float32 fixture model on real frames (skipped where nvidia-modelopt[onnx] is absent).

- FP16 (AutoCast): run under ONNX Runtime CPU; detections must match the float model's.
- INT8, TensorRT's recipe (Q/DQ, the rest in FP16): ONNX Runtime's CPU QuantizeLinear on
  float16 input truncates instead of rounding to nearest even (microsoft/onnxruntime#18576,
  seen here with 1.24 and 1.32: 0-4 detections of 7-24 survive), so this graph is run with ONNX's
  reference evaluator, which follows the operator spec. Its Resize is replaced by an
  equivalent nearest-neighbour one (onnx 1.21's, which ModelOpt pins, loops per element in
  Python: minutes per frame); the operators under test, Q/DQ, are the reference's own.
- INT8 with float32 for the rest: run under ONNX Runtime CPU.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import MODELS, UDACITY, needs_fixtures

pytestmark = [
    needs_fixtures,
    pytest.mark.skipif(importlib.util.find_spec("modelopt") is None,
                       reason='NVIDIA Model Optimizer is not installed: pip install '
                              '"nvidia-modelopt[onnx]"'),
]

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"
FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto data types


@pytest.fixture(scope="module")
def material():
    """The model's spec, 3 test frames (with their letterbox) and 32 calibration frames."""
    from pipeline.build_engine import calibration_frames, model_spec
    from pipeline.infer.preprocess import letterbox, to_tensor
    from pipeline.io.sources import VideoFileSource

    spec = model_spec(YOLO_320)
    source = VideoFileSource(UDACITY)
    tests = []
    import threading

    for f in source.frames(threading.Event()):
        if f.seq in (15, 110, 205):  # between the calibration frames below
            image, box = letterbox(f.image, spec.input_wh)
            tests.append((to_tensor(image, spec), box))
    source.close()
    return spec, tests, calibration_frames(UDACITY, spec, count=32)


def reference_evaluator(model):
    """onnx.reference with a fast Resize for YOLO's 2× nearest upsampling (asymmetric,
    floor: output pixel i reads input pixel i // 2, which is what np.repeat does)."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import OpRun

    class Resize(OpRun):
        op_domain = ""

        def _run(self, x, roi=None, scales=None, sizes=None, mode=None,
                 coordinate_transformation_mode=None, nearest_mode=None, **_):
            factors = [float(f) for f in (scales if scales is not None and len(scales) else
                                          np.asarray(sizes) / np.asarray(x.shape))]
            if (mode, coordinate_transformation_mode, nearest_mode) != (
                    "nearest", "asymmetric", "floor") or any(f != int(f) for f in factors):
                raise NotImplementedError(f"test Resize: {mode} {factors}")
            for axis, f in enumerate(factors):
                x = np.repeat(x, int(f), axis=axis) if f != 1 else x
            return (x,)

    return ReferenceEvaluator(model, new_ops=[Resize])


def detections(spec, outputs: dict, box):
    from pipeline.config import DecodeParams
    from pipeline.decode.yolo import YoloSegDecoder

    return YoloSegDecoder(spec, DecodeParams())(outputs, box)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise box IoU, (N,4) × (M,4) xyxy → (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def agreement(ref, got) -> tuple[int, int, float]:
    """(reference detections, matched ones, mean IoU of the matches): a match is the same
    class with box IoU >= 0.5 (greedy, best first)."""
    if len(ref) == 0:
        return 0, 0, 1.0
    if len(got) == 0:
        return len(ref), 0, 0.0
    m = iou(ref.xyxy, got.xyxy) * (ref.class_ids[:, None] == got.class_ids[None, :])
    used, ious = set(), []
    for i in np.argsort(-ref.scores):
        j = int(np.argmax(np.where([k not in used for k in range(len(got))], m[i], -1)))
        if m[i, j] >= 0.5:
            used.add(j)
            ious.append(float(m[i, j]))
    return len(ref), len(ious), float(np.mean(ious)) if ious else 0.0


def ort_outputs(path: Path, x: np.ndarray) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"images": x}), strict=True))


def io_types(path: Path) -> tuple[list[int], list[int]]:
    import onnx

    g = onnx.load(str(path)).graph
    return ([i.type.tensor_type.elem_type for i in g.input],
            [o.type.tensor_type.elem_type for o in g.output])


def total_agreement(spec, tests, run) -> tuple[int, int, float]:
    n = k = 0
    ious = []
    for x, box in tests:
        r, m, mi = agreement(detections(spec, ort_outputs(YOLO_320, x), box),
                             detections(spec, run(x), box))
        n, k = n + r, k + m
        ious += [mi] * m
    print(f"reference detections {n}, matched {k}, mean IoU {np.mean(ious) if ious else 0:.3f}")
    return n, k, float(np.mean(ious)) if ious else 0.0


def test_fp16_autocast_matches_float(material, tmp_path) -> None:
    import onnx

    from engines.tensorrt.precision import convert_fp16

    spec, tests, _ = material
    out = convert_fp16(YOLO_320, tmp_path / "fp16.onnx")
    inits = Counter(i.data_type for i in onnx.load(str(out)).graph.initializer)
    assert inits[FLOAT16] > 100 and inits[FLOAT16] > 10 * inits[FLOAT]
    assert io_types(out) == ([FLOAT], [FLOAT, FLOAT])  # keep_io_types
    n, k, mean_iou = total_agreement(spec, tests, lambda x: ort_outputs(out, x))
    assert n >= 6 and k >= 0.95 * n and mean_iou >= 0.95


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # reference Sigmoid: exp overflow in the branch not taken
def test_int8_qdq_tensorrt_recipe(material, tmp_path) -> None:
    import onnx

    from engines.tensorrt.precision import Int8Recipe, quantize_int8

    spec, tests, calib = material
    out = quantize_int8(YOLO_320, tmp_path / "int8.onnx", calib, "images", Int8Recipe())
    model = onnx.load(str(out))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] >= 100 and ops["QuantizeLinear"] == ops["DequantizeLinear"]
    assert io_types(out) == ([FLOAT], [FLOAT, FLOAT])
    inits = {i.name: i.data_type for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node
              if n.op_type == "QuantizeLinear" and n.input[1] in inits]
    assert scales and set(scales) == {FLOAT16}  # the unquantized rest runs in FP16
    evaluator = reference_evaluator(model)
    names = [o.name for o in model.graph.output]
    x, box = tests[2]  # one frame: the reference evaluator takes ~10-20 s
    ref = detections(spec, ort_outputs(YOLO_320, x), box)
    got = detections(spec, dict(zip(names, evaluator.run(None, {"images": x}), strict=True)), box)
    n, k, mean_iou = agreement(ref, got)
    print(f"INT8 (fp16 rest, reference evaluator): {n} reference, {k} matched, IoU {mean_iou:.3f}")
    assert n >= 3 and k >= 0.75 * n and mean_iou >= 0.8


def test_int8_qdq_float32_rest_under_onnxruntime(material, tmp_path) -> None:
    from engines.tensorrt.precision import Int8Recipe, quantize_int8

    spec, tests, calib = material
    out = quantize_int8(YOLO_320, tmp_path / "int8_32.onnx", calib, "images",
                        Int8Recipe(high_precision_dtype="fp32"))
    n, k, mean_iou = total_agreement(spec, tests, lambda x: ort_outputs(out, x))
    assert n >= 6 and k >= 0.75 * n and mean_iou >= 0.8
