"""Tiny ONNX models for layouts the fixtures lack, a model's spec, mask IoU."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def constant_model(path: Path, outputs: dict[str, np.ndarray], input_hw: tuple[int, int] = (320, 320),
                   metadata: dict[str, str] | None = None, work: int = 0) -> Path:
    """``work`` > 0 adds that many 3×3 convolutions over the input (32 channels) whose
    result is multiplied by 0 and added to the first output: a model that costs time."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = input_hw
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])
    nodes, outs, inits = [], [], []
    for i, (name, value) in enumerate(outputs.items()):
        value = np.ascontiguousarray(value, dtype=np.float32)
        const = name if not (work and i == 0) else name + "_const"
        nodes.append(helper.make_node("Constant", [], [const],
                                      value=numpy_helper.from_array(value, name + "_value")))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
        if work and i == 0:
            x = "images"
            for k in range(work):
                c_in = 3 if k == 0 else 32
                w = np.random.default_rng(k).normal(0, 0.1, (32, c_in, 3, 3)).astype(np.float32)
                inits.append(numpy_helper.from_array(w, f"w{k}"))
                nodes.append(helper.make_node("Conv", [x, f"w{k}"], [f"c{k}"], pads=[1, 1, 1, 1]))
                x = f"c{k}"
            inits.append(numpy_helper.from_array(np.zeros(1, np.float32), "zero"))
            nodes += [helper.make_node("ReduceMean", [x], ["m"], keepdims=0),
                      helper.make_node("Mul", ["m", "zero"], ["m0"]),
                      helper.make_node("Add", [const, "m0"], [name])]
    graph = helper.make_graph(nodes, "constant", [image], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def fixed_yolo_model(path: Path, input_size: int = 320, work: int = 0) -> Path:
    """A YOLOv8-seg layout model that always 'finds' the same two instances (fast to run).

    For pipeline tests where what matters is the flow of frames, not the model's quality.
    """
    n, nm, nc = input_size // 8 * (input_size // 8), 32, 2
    preds = np.zeros((1, 4 + nc + nm, n), np.float32)
    preds[0, :4, 0], preds[0, 4, 0], preds[0, 4 + nc, 0] = (100, 160, 80, 60), 0.9, 1.0
    preds[0, :4, 1], preds[0, 5, 1], preds[0, 4 + nc + 1, 1] = (220, 150, 60, 90), 0.8, 1.0
    mh = input_size // 4
    protos = np.full((1, nm, mh, mh), -1.0, np.float32)
    protos[0, 0, 30:50, 17:33] = 4.0
    protos[0, 1, 28:48, 50:60] = 4.0
    return constant_model(path, {"output0": preds, "output1": protos}, (input_size, input_size),
                          metadata={"names": "{0: 'car', 1: 'person'}"}, work=work)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def spec_of(path: Path) -> tuple:
    """(ModelSpec, engine) of a model read with ONNX Runtime on the CPU."""
    from engines import open_engine, read_spec

    engine = open_engine(path, "onnxruntime", "cpu")
    try:
        return read_spec(engine, path), engine
    except Exception:
        engine.close()
        raise
