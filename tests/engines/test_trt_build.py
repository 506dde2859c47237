"""build-engine without a GPU: option checks, metadata, calibration frames from the real
pipeline preprocessing, and the one-line "install TensorRT" failure of the CLI."""

from __future__ import annotations

import importlib.util
import time

import av
import numpy as np
import pytest

from engines.errors import BackendUnavailable, ModelError
from engines.tensorrt.builder import BuildOptions, onnx_metadata
from engines.tensorrt.gpu import cuda_index
from engines.tensorrt.precision import Precision
from pipeline.errors import ConfigError
from tests.helpers import MODELS, UDACITY, needs_fixtures, run_cli

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"


def tensorrt_usable() -> bool:
    from engines.tensorrt.version import import_tensorrt

    try:
        import_tensorrt()
    except BackendUnavailable:
        return False
    return True


no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None
                                 and tensorrt_usable(), reason="TensorRT is installed here")


@no_tensorrt
def test_import_tensorrt_says_what_to_install() -> None:
    from engines.tensorrt.version import import_tensorrt

    with pytest.raises(BackendUnavailable, match=r"pip install tensorrt.*python3-libnvinfer"):
        import_tensorrt()


@no_tensorrt
@needs_fixtures
def test_cli_without_tensorrt_fails_in_one_line() -> None:
    t0 = time.monotonic()
    r = run_cli("build-engine", str(YOLO_320), "--fp16", timeout=30)
    elapsed = time.monotonic() - t0
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, r.stderr
    assert len(lines) == 1 and lines[0].startswith("maskstream: error: TensorRT is not installed")
    assert "pip install tensorrt" in lines[0]
    assert elapsed < 10


@needs_fixtures
@pytest.mark.parametrize(("args", "rc", "message"), [
    (["--int8"], 1, "--int8 needs --calib VIDEO"),
    (["--fp16", "--calib", str(UDACITY)], 1, "--calib is for --int8"),
    (["--int8", "--calib", "nowhere.mp4"], 1, "calibration video not found: nowhere.mp4"),
    (["--fp16", "--int8"], 2, "not allowed with argument"),
    (["--opt-level", "7"], 2, "invalid choice"),
])
def test_cli_argument_errors(args: list[str], rc: int, message: str) -> None:
    r = run_cli("build-engine", str(YOLO_320), *args, timeout=30)
    assert r.returncode == rc and message in r.stderr, r.stderr


def test_cli_help_and_missing_model() -> None:
    r = run_cli("build-engine", "--help", timeout=30)
    assert r.returncode == 0
    for flag in ("--fp16", "--int8", "--calib", "--batch", "--dla", "--workspace", "--out",
                 "pip install tensorrt", "nvidia-modelopt"):
        assert flag in r.stdout
    r = run_cli("build-engine", "absent.onnx", timeout=30)
    assert r.returncode == 1 and "model file not found: absent.onnx" in r.stderr


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"workspace_gib": 0}, "workspace"),
    ({"optimization_level": 6}, "optimization level"),
    ({"hardware_compat": "TURING"}, "hardware compatibility"),
    ({"precision": Precision.INT8}, "calibration"),
    ({"device": "cpu"}, "cuda or cuda:N"),
])
def test_build_options_validation(kwargs, match) -> None:
    with pytest.raises(ModelError, match=match):
        BuildOptions(**kwargs)


@pytest.mark.parametrize(("device", "index"), [("cuda", 0), ("cuda:0", 0), ("cuda:3", 3)])
def test_cuda_index(device, index) -> None:
    assert cuda_index(device) == index


@pytest.mark.parametrize("device", ["cpu", "cuda:x", "gpu:0", "auto"])
def test_cuda_index_rejects(device) -> None:
    with pytest.raises(ModelError, match="cuda or cuda:N"):
        cuda_index(device)


@needs_fixtures
def test_onnx_metadata_becomes_header_values() -> None:
    meta = onnx_metadata(YOLO_320)
    assert meta["imgsz"] == [320, 320] and meta["stride"] == 32 and meta["task"] == "segment"
    assert meta["names"]["2"] == "car" and len(meta["names"]) == 80


@needs_fixtures
def test_calibration_frames_match_pipeline_preprocessing() -> None:
    from pipeline.build_engine import calibration_frames, model_spec
    from pipeline.infer.preprocess import letterbox, to_tensor
    from pipeline.io.pixels import frame_to_bgr

    spec = model_spec(YOLO_320)
    arr = calibration_frames(UDACITY, spec, count=8)
    assert arr.shape == (8, 3, 320, 320) and arr.dtype == np.float32
    # the 221-frame clip sampled at 0, 31, …, 220: check the first and the last against
    # frames decoded here with PyAV and converted/preprocessed with the pipeline's functions
    with av.open(str(UDACITY)) as c:
        decoded = [frame_to_bgr(f) for f in c.decode(video=0)]
    for slot, index in ((0, 0), (7, 220)):
        expected = to_tensor(letterbox(decoded[index], spec.input_wh)[0], spec)[0]
        np.testing.assert_array_equal(arr[slot], expected)
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_build_engine_file_checks_before_tensorrt(tmp_path) -> None:
    from pipeline.build_engine import build_engine_file

    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match="takes an ONNX model"):
        build_engine_file(model)
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    with pytest.raises(ConfigError, match="calib-frames"):
        build_engine_file(onnx_file, int8=True, calib=model, calib_frames=0)
