"""Device names, backend choice, and the one-line, quick failures when a backend or CUDA
is missing (the CLI in a fresh process, as a user meets them)."""

from __future__ import annotations

import sys
import time

import pytest

from engines import Backend, choose_backend, open_engine, usable_backends
from engines.device import Device, DeviceKind, parse_device
from engines.errors import BackendUnavailable, DeviceError, ModelError
from engines.select import onnxruntime_cuda_problem, tensorrt_problem, torch_problem
from tests.helpers import UDACITY, fixed_yolo_model, needs_fixtures, run_cli

NO_CUDA = onnxruntime_cuda_problem() is not None and torch_problem(cuda=True) is not None
NO_TENSORRT = tensorrt_problem() is not None
needs_no_cuda = pytest.mark.skipif(not NO_CUDA, reason="a CUDA backend is usable here")


@pytest.mark.parametrize(("text", "want"), [
    ("auto", Device(DeviceKind.AUTO)),
    ("cpu", Device(DeviceKind.CPU)),
    ("CPU", Device(DeviceKind.CPU)),
    ("cuda", Device(DeviceKind.CUDA, 0)),
    ("cuda:0", Device(DeviceKind.CUDA, 0)),
    (" cuda:3 ", Device(DeviceKind.CUDA, 3)),
])
def test_device_names(text: str, want: Device) -> None:
    got = parse_device(text)
    assert got == want
    assert parse_device(str(got)) == got  # str() is the canonical form


@pytest.mark.parametrize(("text", "message"), [
    ("gpu", "expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("cuda:", "expected auto, cpu, cuda or cuda:N"),
    ("cuda:-1", "expected auto, cpu, cuda or cuda:N"),
    ("cpu:1", "only cuda takes an index"),
    ("", "expected auto, cpu, cuda or cuda:N, got ''"),
])
def test_bad_device_names(text: str, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        parse_device(text)


@needs_no_cuda
def test_auto_on_a_machine_without_cuda_is_onnxruntime_on_the_cpu(tmp_path, caplog) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    with caplog.at_level("INFO", logger="engines.select"):
        choice = choose_backend(model)
    assert (choice.backend, str(choice.device)) == (Backend.ONNXRUNTIME, "cpu")
    assert "no CUDA backend usable" in choice.reason
    logged = [r.getMessage() for r in caplog.records if r.name == "engines.select"]
    assert logged == [f"backend onnxruntime on cpu for m.onnx: {choice.reason}"]
    engine = open_engine(model)
    assert (engine.backend, engine.device) == (Backend.ONNXRUNTIME, "cpu")


def test_cpu_always_means_onnxruntime_unless_told_otherwise(tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    choice = choose_backend(model, "auto", "cpu")
    assert (choice.backend, str(choice.device)) == (Backend.ONNXRUNTIME, "cpu")
    assert "fastest CPU backend" in choice.reason
    if torch_problem(cuda=False) is None:
        torch_cpu = choose_backend(model, Backend.TORCH, "cpu")
        assert (torch_cpu.backend, str(torch_cpu.device)) == (Backend.TORCH, "cpu")


@needs_no_cuda
def test_a_named_backend_falls_back_to_the_cpu_only_when_the_device_is_auto(tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    choice = choose_backend(model, "onnxruntime", "auto")
    assert str(choice.device) == "cpu" and "no CUDA for it" in choice.reason
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        choose_backend(model, "onnxruntime", "cuda")
    with pytest.raises(BackendUnavailable, match="CPU build"):
        choose_backend(model, "torch", "cuda:1")


@pytest.mark.skipif(not NO_TENSORRT, reason="tensorrt is installed here")
def test_engine_files_run_on_tensorrt_only(tmp_path) -> None:
    plan = tmp_path / "m.engine"
    plan.write_bytes(b"not really an engine")
    with pytest.raises(BackendUnavailable, match="pip install tensorrt"):
        choose_backend(plan)
    with pytest.raises(ModelError, match="runs on the tensorrt backend only, got backend torch"):
        choose_backend(plan, "torch")
    with pytest.raises(DeviceError, match="CUDA devices only"):
        choose_backend(plan, "tensorrt", "cpu")


def test_unknown_backend_names_the_choices(tmp_path) -> None:
    with pytest.raises(ModelError, match="expected one of auto, onnxruntime, torch, tensorrt, got 'tvm'"):
        choose_backend(tmp_path / "m.onnx", "tvm")


def test_usable_backends_report_every_backend_and_device() -> None:
    rows = usable_backends()
    assert {(r.backend, r.device) for r in rows} == {
        (Backend.TENSORRT, DeviceKind.CUDA), (Backend.TORCH, DeviceKind.CUDA),
        (Backend.ONNXRUNTIME, DeviceKind.CUDA), (Backend.TORCH, DeviceKind.CPU),
        (Backend.ONNXRUNTIME, DeviceKind.CPU)}
    by_key = {(r.backend, r.device): r for r in rows}
    assert by_key[(Backend.ONNXRUNTIME, DeviceKind.CPU)].problem is None
    for r in rows:
        assert r.describe().startswith(r.backend.value)
        assert ("not usable: " in r.describe()) == (r.problem is not None)


@needs_fixtures
@pytest.mark.parametrize(("flags", "wants"), [
    pytest.param(["--backend", "tensorrt"], ["pip install tensorrt", "python3-libnvinfer"],
                 marks=pytest.mark.skipif(not NO_TENSORRT, reason="tensorrt is installed here")),
    pytest.param(["--device", "cuda"], ["no backend can use CUDA", "onnxruntime-gpu",
                                        "CUDA build of torch"], marks=needs_no_cuda),
    pytest.param(["--backend", "torch", "--device", "cuda"], ["CUDA build of torch"],
                 marks=needs_no_cuda),
])
def test_cli_says_what_to_install_in_one_line_within_seconds(flags, wants, tmp_path) -> None:
    started = time.monotonic()
    r = run_cli("run", str(UDACITY), "--model", str(fixed_yolo_model(tmp_path / "m.onnx")),
                "--jsonl", str(tmp_path / "out.jsonl"), *flags, timeout=30)
    took = time.monotonic() - started
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maskstream: error: "), r.stderr
    for want in wants:
        assert want in lines[0]
    assert took < 10, f"took {took:.1f} s"
    assert not (tmp_path / "out.jsonl").exists()


def test_onnx2torch_imports_without_torchvision_and_leaves_no_stand_in() -> None:
    if torch_problem(cuda=False) is not None:
        pytest.skip(f"torch backend: {torch_problem(cuda=False)}")
    from engines.pytorch.onnx2torch_import import _torchvision_importable, import_onnx2torch

    had = _torchvision_importable()
    module = import_onnx2torch()
    assert module.__name__ == "onnx2torch" and hasattr(module, "convert")
    if not had:
        assert "torchvision" not in sys.modules and "torchvision.ops" not in sys.modules


def test_a_model_that_needs_torchvision_says_so(tmp_path) -> None:
    """NonMaxSuppression inside the graph: onnx2torch converts it to torchvision.ops.nms,
    which is not installed here; the stand-in says what is missing when it runs."""
    if torch_problem(cuda=False) is not None:
        pytest.skip(f"torch backend: {torch_problem(cuda=False)}")
    from engines.pytorch.onnx2torch_import import _torchvision_importable

    if _torchvision_importable():
        pytest.skip("torchvision is installed here")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 8])
    out = helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])
    limit = numpy_helper.from_array(np.array([5], np.int64), "limit")
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "limit"], ["selected"])
    model = helper.make_model(helper.make_graph([node], "nms", [boxes, scores], [out], [limit]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "nms.onnx"))
    engine = open_engine(tmp_path / "nms.onnx", "torch", "cpu")
    feeds = {"boxes": np.random.default_rng(0).random((1, 8, 4), np.float32),
             "scores": np.random.default_rng(1).random((1, 1, 8), np.float32)}
    with pytest.raises(BackendUnavailable, match=r"needs torchvision\.ops\.nms"):
        engine.infer(feeds)
