"""The torch engine's contract on the CPU: what it reports, one frozen module per input
shape (per batch size), errors that name the bad value, and the converters added for
newer opsets, each checked against ONNX Runtime on the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from engines import Backend, IoKind, open_engine
from engines.errors import DeviceError, EngineError, ModelError
from engines.select import torch_problem
from tools.dynamic_batch import make_dynamic

pytestmark = pytest.mark.skipif(torch_problem(cuda=False) is not None,
                                reason=f"torch backend: {torch_problem(cuda=False)}")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "engines" / "models" / "demo-seg.onnx"


@pytest.fixture(scope="module")
def demo():
    engine = open_engine(DEMO, "torch", "cpu")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def dynamic_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dyn") / "demo-dyn.onnx"
    onnx.save(make_dynamic(onnx.load(str(DEMO))), str(out))
    return out


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 224, 384), np.float32)


def test_reports_what_onnxruntime_reports(demo) -> None:
    ref = open_engine(DEMO, "onnxruntime", "cpu")
    assert (demo.inputs, demo.outputs, demo.metadata) == (ref.inputs, ref.outputs, ref.metadata)
    assert (demo.backend, demo.io, demo.device) == (Backend.TORCH, IoKind.TORCH, "cpu")
    assert (demo.outputs_reused, demo.stream, demo.batch_range) == (False, None, (1, 1))


def test_every_call_returns_fresh_tensors_on_the_cpu(demo) -> None:
    a = demo.infer({"images": frames(1, 1)})
    kept = {k: v.clone() for k, v in a.items()}
    b = demo.infer({"images": frames(1, 2)})
    for k in a:
        assert a[k].data_ptr() != b[k].data_ptr()
        assert torch.equal(a[k], kept[k])  # the second call did not touch the first result
        assert not torch.equal(a[k], b[k])


def test_one_frozen_module_per_batch_size(dynamic_demo) -> None:
    engine = open_engine(dynamic_demo, "torch", "cpu")
    assert engine.batch_range == (1, 1024)
    x = torch.from_numpy(frames(3, 7))
    batched = engine.infer({"images": x})
    singles = [engine.infer({"images": x[i:i + 1]}) for i in range(3)]
    assert sorted(engine._runners) == [((1, 3, 224, 384),), ((3, 3, 224, 384),)]
    for k, v in batched.items():
        assert v.shape[0] == 3
        stacked = torch.cat([s[k] for s in singles])
        assert float((v - stacked).abs().max()) <= 1e-4 * float(stacked.abs().max())


def test_warmup_prepares_the_batches_asked_for(dynamic_demo) -> None:
    engine = open_engine(dynamic_demo, "torch", "cpu")
    engine._warm = (1, 2)
    engine.warmup()
    assert sorted(engine._runners) == [((1, 3, 224, 384),), ((2, 3, 224, 384),)]


@pytest.mark.parametrize(("feeds", "message"), [
    ({"images": np.zeros((2, 3, 224, 384), np.float32)}, r"expected shape \[1, 3, 224, 384\] \(batch 1\.\.1\), got \[2, 3, 224, 384\]"),
    ({"images": np.zeros((1, 3, 320, 320), np.float32)}, r"got \[1, 3, 320, 320\]"),
    ({"image": np.zeros((1, 3, 224, 384), np.float32)}, r"no input named 'images'"),
])
def test_bad_feeds_are_engine_errors(demo, feeds, message) -> None:
    with pytest.raises(EngineError, match=message):
        demo.infer(feeds)


def test_closed_engine_refuses_new_shapes() -> None:
    engine = open_engine(DEMO, "torch", "cpu")
    engine.close()
    with pytest.raises(EngineError, match="after close"):
        engine.infer({"images": frames(1)})


@pytest.mark.parametrize("option", ["fp16", "cuda_graphs"])
def test_gpu_options_on_the_cpu_are_refused(option) -> None:
    with pytest.raises(DeviceError, match="need a CUDA device, got cpu"):
        open_engine(DEMO, "torch", "cpu", **{option: True})


def test_host_constants_stay_on_the_host_when_the_module_moves() -> None:
    from engines.pytorch.freeze import HostArgs, freeze
    from engines.pytorch.load import load_module

    frozen = freeze(load_module(DEMO).module, [torch.zeros(1, 3, 224, 384)])
    frozen.to("meta").to(torch.float16)
    hosts = [m for m in frozen.modules() if isinstance(m, HostArgs)]
    assert hosts
    for m in hosts:
        for value in [*m.by_position.values(), *m.by_name.values()]:
            if isinstance(value, torch.Tensor):
                assert value.device.type == "cpu" and value.dtype != torch.float16
    assert all(p.device.type == "meta" for p in frozen.parameters())


def _save(tmp_path: Path, nodes, inputs, outputs, inits=(), opset: int = 18) -> Path:
    model = helper.make_model(helper.make_graph(nodes, "t", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    path = tmp_path / "t.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("sizes", [None, [2, 4, 1]])
def test_split_18_matches_onnxruntime(tmp_path, sizes) -> None:
    """Opset 18 moved Split's sizes to an input and added num_outputs (uneven: the last
    chunk is the smaller one)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7, 5])
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(3)]
    inits = [] if sizes is None else [helper.make_tensor("sizes", TensorProto.INT64, [3], sizes)]
    node = (helper.make_node("Split", ["x"], ["y0", "y1", "y2"], axis=1, num_outputs=3)
            if sizes is None else helper.make_node("Split", ["x", "sizes"], ["y0", "y1", "y2"],
                                                   axis=1))
    path = _save(tmp_path, [node], [x], outs, inits)
    feeds = {"x": np.random.default_rng(0).random((1, 7, 5), np.float32)}
    ref = open_engine(path, "onnxruntime", "cpu").infer(feeds)
    got = open_engine(path, "torch", "cpu").infer(feeds)
    assert [tuple(got[k].shape) for k in ("y0", "y1", "y2")] == [ref[k].shape for k in ref]
    for k in ref:
        assert np.array_equal(got[k].numpy(), ref[k])


def test_resize_19_converts_and_refuses_what_it_cannot_do(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    plain = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    path = _save(tmp_path, [plain], [x], [y], [scales], opset=19)
    feeds = {"x": np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)}
    ref = open_engine(path, "onnxruntime", "cpu").infer(feeds)["y"]
    assert np.array_equal(open_engine(path, "torch", "cpu").infer(feeds)["y"].numpy(), ref)
    smooth = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", antialias=1)
    path = _save(tmp_path, [smooth], [x], [y], [scales], opset=19)
    with pytest.raises(ModelError, match="antialias=1 is not supported"):
        open_engine(path, "torch", "cpu")


def test_an_op_onnx2torch_lacks_is_a_model_error(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    path = _save(tmp_path, [helper.make_node("Det", ["x"], ["y"])], [x], [y], opset=17)
    with pytest.raises(ModelError, match=r"t\.onnx: onnx2torch cannot convert it: .*Det"):
        open_engine(path, "torch", "cpu")
