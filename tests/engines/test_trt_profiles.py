"""Optimization-profile shapes from real ONNX inputs (fixture and small generated models)."""

from __future__ import annotations

import pytest

from engines.errors import ModelError
from engines.tensorrt.profiles import OnnxInput, ProfileShape, batch_profiles, read_onnx_inputs
from tests.helpers import MODELS, TWINLITE, needs_fixtures

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"


def _model(path, dims: list[int | str]) -> str:
    """A one-node ONNX model (Identity) whose input has ``dims``."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))
    return str(path)


@needs_fixtures
def test_fixture_inputs_and_fixed_batch() -> None:
    (inp,) = read_onnx_inputs(YOLO_320)
    assert inp == OnnxInput("images", (1, 3, 320, 320), 1)
    assert batch_profiles((inp,)) == (
        ProfileShape("images", (1, 3, 320, 320), (1, 3, 320, 320), (1, 3, 320, 320)),)
    with pytest.raises(ModelError, match=r"fixed batch of 1, got batch 4.*dynamic_batch"):
        batch_profiles((inp,), batch=4)
    (tw,) = read_onnx_inputs(TWINLITE)
    assert batch_profiles((tw,))[0].max == (1, 3, 360, 640)


@pytest.mark.parametrize(("dims", "batch", "imgsz", "expected"), [
    (["batch", 3, 320, 320], 8, None, ((1, 3, 320, 320), (8, 3, 320, 320), (8, 3, 320, 320))),
    (["batch", 3, 320, 320], 1, None, ((1, 3, 320, 320), (1, 3, 320, 320), (1, 3, 320, 320))),
    (["batch", 3, "h", "w"], 4, (384, 640),
     ((1, 3, 384, 640), (4, 3, 384, 640), (4, 3, 384, 640))),
    ([2, 3, 64, 64], 2, None, ((2, 3, 64, 64), (2, 3, 64, 64), (2, 3, 64, 64))),
])
def test_profiles_from_generated_models(tmp_path, dims, batch, imgsz, expected) -> None:
    inputs = read_onnx_inputs(_model(tmp_path / "m.onnx", dims))
    (p,) = batch_profiles(inputs, batch=batch, imgsz=imgsz)
    assert (p.min, p.opt, p.max) == expected
    assert p.as_key() == ("images", *expected)


@pytest.mark.parametrize(("dims", "batch", "match"), [
    (["batch", 3, "h", "w"], 1, r"height is dynamic \('h'\).*imgsz"),
    (["batch", "c", 32, 32], 1, r"dimension 1 is dynamic"),
    (["batch", 3, 32, 32], 0, r"batch: expected an int >= 1, got 0"),
    ([1, 3, 32, 32], 2, r"fixed batch of 1, got batch 2"),
])
def test_profile_errors(tmp_path, dims, batch, match) -> None:
    inputs = read_onnx_inputs(_model(tmp_path / "m.onnx", dims))
    with pytest.raises(ModelError, match=match):
        batch_profiles(inputs, batch=batch)


def test_unreadable_onnx(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        read_onnx_inputs(bad)
    with pytest.raises(ModelError, match="not found"):
        read_onnx_inputs(tmp_path / "absent.onnx")
