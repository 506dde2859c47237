"""TensorRT on a real GPU: build from the fixture ONNX, run, compare with ONNX Runtime.

Skipped without CUDA and TensorRT (CI). Where they exist, this is the check that the
code written against NVIDIA's documented API actually works.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from tests.helpers import MODELS, ROOT, UDACITY, needs_fixtures


def _tensorrt_ok() -> bool:
    from engines.errors import BackendUnavailable
    from engines.tensorrt.version import import_tensorrt

    try:
        import_tensorrt()
    except BackendUnavailable:
        return False
    return True


pytestmark = [
    pytest.mark.gpu, needs_fixtures,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(not torch.cuda.is_available() or not _tensorrt_ok(),
                       reason="needs TensorRT (pip install tensorrt)"),
]

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"


@pytest.fixture(scope="module")
def frames():
    """Four letterboxed fixture frames (1×3×320×320 float32) with their letterboxes."""
    from pipeline.build_engine import model_spec
    from pipeline.infer.preprocess import letterbox, to_tensor
    from pipeline.io.sources import VideoFileSource

    spec = model_spec(YOLO_320)
    source = VideoFileSource(UDACITY)
    out = []
    for f in source.frames(threading.Event()):
        if f.seq in (10, 70, 130, 190):
            image, box = letterbox(f.image, spec.input_wh)
            out.append((to_tensor(image, spec), box))
    source.close()
    return spec, out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def ort(x: np.ndarray) -> dict[str, np.ndarray]:
    from engines import open_engine

    e = open_engine(YOLO_320, "onnxruntime", "cpu")
    try:
        return e.infer({"images": x})
    finally:
        e.close()


def boxes(spec, outputs, box) -> np.ndarray:
    from pipeline.config import DecodeParams
    from pipeline.decode.yolo import YoloSegDecoder

    out = {k: (v.float().cpu() if isinstance(v, torch.Tensor) else v) for k, v in outputs.items()}
    return YoloSegDecoder(spec, DecodeParams())(out, box).xyxy


def matched(a: np.ndarray, b: np.ndarray, px: float) -> int:
    """How many boxes of ``a`` have a box in ``b`` with every coordinate within ``px``."""
    if len(a) == 0 or len(b) == 0:
        return 0
    return int((np.abs(a[:, None, :] - b[None, :, :]).max(axis=2).min(axis=1) < px).sum())


def test_fp32_engine_matches_onnxruntime(frames, cache_dir) -> None:
    from engines.spec import read_spec
    from engines.tensorrt import open_tensorrt_engine
    from engines.tensorrt.builder import BuildOptions, build_engine

    spec, tests = frames
    path = build_engine(YOLO_320, BuildOptions(cache_dir=cache_dir))
    engine = open_tensorrt_engine(path, "cuda:0")
    try:
        assert engine.batch_range == (1, 1) and engine.outputs_reused
        assert read_spec(engine, path).class_names[2] == "car"  # names from the header
        engine.warmup()
        for x, box in tests:
            got = engine.infer({"images": x})
            engine.stream.synchronize()
            assert got["output0"].device.type == "cuda"
            ref = ort(x)
            np.testing.assert_allclose(got["output1"].cpu().numpy(), ref["output1"], atol=2e-2)
            a, b = boxes(spec, ref, box), boxes(spec, got, box)
            assert abs(len(a) - len(b)) <= 1 and matched(a, b, 1.0) >= len(a) - 1
    finally:
        engine.close()


def test_cache_hit_and_torch_input(frames, cache_dir) -> None:
    from engines.tensorrt import open_tensorrt_engine
    from engines.tensorrt.builder import BuildOptions, build_engine

    _, tests = frames
    first = build_engine(YOLO_320, BuildOptions(cache_dir=cache_dir))
    mtime = first.stat().st_mtime_ns
    again = build_engine(YOLO_320, BuildOptions(cache_dir=cache_dir))
    assert again == first and again.stat().st_mtime_ns == mtime  # not rebuilt
    engine = open_tensorrt_engine(first, "cuda:0")
    try:
        x = tests[0][0]
        a = engine.infer({"images": x})["output0"].clone()
        b = engine.infer({"images": torch.from_numpy(x).cuda()})["output0"]
        engine.stream.synchronize()
        torch.testing.assert_close(a, b)
    finally:
        engine.close()


def test_cuda_graph_replay_equals_plain_enqueue(frames, cache_dir) -> None:
    from engines.tensorrt.builder import BuildOptions, build_engine
    from engines.tensorrt.engine import TensorRTEngine

    _, tests = frames
    path = build_engine(YOLO_320, BuildOptions(cache_dir=cache_dir))
    graph, plain = TensorRTEngine(path, cuda_graph=True), TensorRTEngine(path, cuda_graph=False)
    try:
        for x, _ in tests:
            g = graph.infer({"images": x})["output0"]
            p = plain.infer({"images": x})["output0"]
            graph.stream.synchronize()
            plain.stream.synchronize()
            torch.testing.assert_close(g, p)
        assert graph.uses_cuda_graph and not plain.uses_cuda_graph
    finally:
        graph.close()
        plain.close()


def test_fp16_engine_detections(frames, cache_dir) -> None:
    from engines.tensorrt import open_tensorrt_engine
    from engines.tensorrt.builder import BuildOptions, build_engine
    from engines.tensorrt.precision import Precision

    spec, tests = frames
    path = build_engine(YOLO_320, BuildOptions(precision=Precision.FP16, cache_dir=cache_dir))
    engine = open_tensorrt_engine(path)
    try:
        total = close = 0
        for x, box in tests:
            got = engine.infer({"images": x})
            engine.stream.synchronize()
            a, b = boxes(spec, ort(x), box), boxes(spec, got, box)
            total += len(a)
            close += matched(a, b, 3.0)
        assert total >= 6 and close >= 0.9 * total
    finally:
        engine.close()


def test_dynamic_batch_engine(frames, cache_dir, tmp_path) -> None:
    from engines.tensorrt import open_tensorrt_engine
    from engines.tensorrt.builder import BuildOptions, build_engine

    _, tests = frames
    dyn = tmp_path / "dyn.onnx"
    subprocess.run([sys.executable, "-m", "tools.dynamic_batch", str(YOLO_320), str(dyn)],
                   check=True, capture_output=True, timeout=300, cwd=ROOT)
    path = build_engine(dyn, BuildOptions(batch=4, cache_dir=cache_dir))
    engine = open_tensorrt_engine(path)
    try:
        assert engine.batch_range == (1, 4)
        singles = []
        for x, _ in tests:
            singles.append(engine.infer({"images": x})["output0"].clone())
        batch = np.concatenate([x for x, _ in tests[:3]])
        out = engine.infer({"images": batch})["output0"]
        engine.stream.synchronize()
        assert out.shape[0] == 3
        for i in range(3):
            torch.testing.assert_close(out[i], singles[i][0], atol=1e-3, rtol=1e-3)
    finally:
        engine.close()


def test_cli_build_engine_prints_path(cache_dir, tmp_path) -> None:
    out = tmp_path / "m.engine"
    env = dict(os.environ, MASKSTREAM_ENGINE_CACHE=str(cache_dir))
    r = subprocess.run([sys.executable, "-m", "pipeline", "build-engine", str(YOLO_320),
                        "--out", str(out)], capture_output=True, text=True, timeout=900,
                       cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and f"engine: {out}" in r.stdout
