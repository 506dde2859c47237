"""GPU engines where CUDA is: the torch backend (fp16, CUDA graphs, no host sync) and
ONNX Runtime with I/O binding, each against ONNX Runtime on the CPU on real frames.
Skipped, with the reason, everywhere else."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from engines import open_engine, read_spec
from engines.select import onnxruntime_cuda_problem, torch_problem
from pipeline.decode.yolo import DecodeParams, YoloSegDecoder
from pipeline.infer.preprocess import letterbox, to_tensor
from tests.engines.realdata import best_iou, frames
from tests.helpers import MODELS, needs_fixtures

pytestmark = [pytest.mark.gpu, needs_fixtures,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
needs_torch_cuda = pytest.mark.skipif(torch_problem(cuda=True) is not None,
                                      reason=f"torch backend on CUDA: {torch_problem(cuda=True)}")
YOLO640 = MODELS / "yolov8n-seg-640.onnx"


def real_inputs(spec, n: int) -> list[tuple[np.ndarray, object]]:
    out = []
    for image in frames("udacity_solidWhiteRight.mp4", n, step=29):
        fitted, box = letterbox(image, spec.input_wh)
        out.append((to_tensor(fitted, spec), box))
    return out


def detections_agree(spec, ref_outputs, outputs, box) -> tuple[int, int, list[float]]:
    decode = YoloSegDecoder(spec, DecodeParams())
    theirs = decode({k: np.asarray(v) for k, v in ref_outputs.items()}, box)
    mine = decode(outputs, box)
    best = best_iou(theirs.xyxy, mine.xyxy)
    return len(theirs), int((best < 0.5).sum()), list(best[best >= 0.5])


@needs_torch_cuda
def test_torch_fp16_graphs_match_onnxruntime_on_the_cpu() -> None:
    ref = open_engine(YOLO640, "onnxruntime", "cpu")
    spec = read_spec(ref, YOLO640)
    engine = open_engine(YOLO640, "torch", "cuda")
    assert (engine.device, engine.outputs_reused, engine.fp16, engine.cuda_graphs) == (
        "cuda:0", True, True, True)
    assert engine.stream is not None
    engine.warmup()
    found, missed, ious, first = 0, 0, [], None
    for x, box in real_inputs(spec, 4):
        out = engine.infer({spec.input_name: x})
        torch.cuda.current_stream().wait_stream(engine.stream)
        if first is None:
            first = {k: v.data_ptr() for k, v in out.items()}
        assert {k: v.data_ptr() for k, v in out.items()} == first  # static graph outputs
        assert all(v.dtype == torch.float32 and v.is_cuda for v in out.values())
        r = ref.infer({spec.input_name: x})
        rel = max(float((out[k].cpu() - torch.from_numpy(r[k])).abs().max()) /
                  float(np.abs(r[k]).max()) for k in r)
        assert rel < 5e-3, rel  # fp16
        n, m, i = detections_agree(spec, r, {k: v.clone() for k, v in out.items()}, box)
        found, missed, ious = found + n, missed + m, ious + i
    print(f"\ntorch fp16 + CUDA graphs vs ORT CPU: {found - missed}/{found} boxes, "
          f"IoU mean {np.mean(ious):.4f}")
    assert missed <= max(1, found // 20) and np.mean(ious) > 0.97


@needs_torch_cuda
def test_frozen_module_makes_no_host_sync_on_cuda() -> None:
    from engines.pytorch.freeze import freeze
    from engines.pytorch.load import load_module

    module = load_module(YOLO640).module.cuda().half()
    x = torch.zeros(1, 3, 640, 640, device="cuda", dtype=torch.float16)
    frozen = freeze(module, [x])
    with torch.no_grad():
        frozen(x)  # first run: lazy initialisation may sync
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            frozen(x)
            with pytest.raises(RuntimeError, match="synchroniz"):
                module(x)  # as converted: reads shapes back from the device
        finally:
            torch.cuda.set_sync_debug_mode("default")


@needs_torch_cuda
def test_graph_capture_failure_falls_back_to_eager(caplog) -> None:
    from engines.pytorch.graphs import EagerRunner, capture_or_eager

    def syncs(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x * float(x.sum().item()),)

    stream = torch.cuda.Stream()
    with caplog.at_level(logging.WARNING, logger="engines.pytorch.graphs"):
        runner = capture_or_eager(syncs, [torch.ones(4, device="cuda")], stream)
    assert isinstance(runner, EagerRunner)
    assert "CUDA graph capture failed" in caplog.text
    assert torch.equal(runner([torch.ones(4, device="cuda")])[0].cpu(), torch.full((4,), 4.0))


@needs_torch_cuda
def test_dynamic_batch_graphs_per_batch_size(tmp_path) -> None:
    import onnx

    from tools.dynamic_batch import make_dynamic

    dyn = tmp_path / "dyn.onnx"
    onnx.save(make_dynamic(onnx.load(str(YOLO640))), str(dyn))
    engine = open_engine(dyn, "torch", "cuda", fp16=False)
    x = torch.rand(8, 3, 640, 640, device="cuda")
    batched = {k: v.clone() for k, v in engine.infer({"images": x}).items()}
    for i in (0, 5):
        single = engine.infer({"images": x[i:i + 1]})
        for k, v in single.items():
            assert float((batched[k][i:i + 1] - v).abs().max()) <= 1e-3 * float(v.abs().max())
    assert len(engine._runners) == 2


@pytest.mark.skipif(onnxruntime_cuda_problem() is not None,
                    reason=f"onnxruntime on CUDA: {onnxruntime_cuda_problem()}")
def test_onnxruntime_io_binding_matches_the_cpu() -> None:
    ref = open_engine(YOLO640, "onnxruntime", "cpu")
    spec = read_spec(ref, YOLO640)
    engine = open_engine(YOLO640, "onnxruntime", "cuda")
    assert engine.outputs_reused and engine.stream is not None
    for x, _box in real_inputs(spec, 2):
        out = engine.infer({spec.input_name: torch.from_numpy(x).cuda()})
        torch.cuda.current_stream().wait_stream(engine.stream)
        r = ref.infer({spec.input_name: x})
        for k in r:
            assert out[k].is_cuda
            assert float((out[k].cpu() - torch.from_numpy(r[k])).abs().max()) <= (
                1e-3 * float(np.abs(r[k]).max()))
