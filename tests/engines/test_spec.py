"""ModelSpec: every recognised layout, and clear errors for the rest (real ORT sessions)."""

from __future__ import annotations

import numpy as np
import pytest

from engines import Layout, Resize, Task, open_engine, read_spec
from pipeline.config import DecodeParams
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.errors import ModelError
from pipeline.infer.preprocess import letterbox
from tests.helpers import TWINLITE, YOLO_INT8, constant_model, needs_fixtures

NAMES3 = "{0: 'person', 1: 'car', 2: 'truck'}"


def spec_of(path):
    engine = open_engine(path, "onnxruntime", "cpu")
    try:
        return read_spec(engine, path), engine
    except Exception:
        engine.close()
        raise


@needs_fixtures
def test_fixture_models() -> None:
    spec, _ = spec_of(YOLO_INT8)
    assert (spec.task, spec.layout, spec.input_wh, spec.num_masks) == (
        Task.INSTANCE, Layout.YOLOV8, (320, 320), 32)
    assert len(spec.class_names) == 80 and spec.class_names[2] == "car"
    assert spec.resize is Resize.LETTERBOX
    spec, _ = spec_of(TWINLITE)
    assert (spec.task, spec.input_wh, spec.resize) == (Task.SEMANTIC, (640, 360), Resize.STRETCH)
    assert spec.heads == (("da", ("background", "da")), ("ll", ("background", "ll")))


def _instances(n_keep: int = 2):
    """Two well-separated instances: cx, cy, w, h in input px, class, score, mask coefs."""
    protos = np.zeros((1, 4, 80, 80), np.float32)
    protos[0, 0, 10:40, 10:40] = 5  # instance 0 lives here
    protos[0, 1, 45:75, 40:70] = 5  # instance 1 here
    protos[0, 2:] = -1  # background: negative logits everywhere else
    inst = [((100, 100, 120, 120), 1, 0.9, [1, 0, 1, 0]),
            ((220, 240, 120, 120), 2, 0.8, [0, 1, 1, 0])][:n_keep]
    return protos, inst


def test_yolov5_layout_decodes_like_yolov8(tmp_path) -> None:
    protos, inst = _instances()
    n, nm, nc = 50, 4, 3
    v8 = np.zeros((1, 4 + nc + nm, n), np.float32)
    v5 = np.zeros((1, n, 5 + nc + nm), np.float32)
    for k, (box, cls, score, coefs) in enumerate(inst):
        v8[0, :4, k], v8[0, 4 + cls, k], v8[0, 4 + nc:, k] = box, score, coefs
        v5[0, k, :4], v5[0, k, 4], v5[0, k, 5 + cls], v5[0, k, 5 + nc:] = box, 1.0, score, coefs
    meta = {"names": NAMES3}
    p8 = constant_model(tmp_path / "v8.onnx", {"output0": v8, "output1": protos}, metadata=meta)
    p5 = constant_model(tmp_path / "v5.onnx", {"output0": v5, "output1": protos}, metadata=meta)
    results = []
    for path, layout in ((p8, Layout.YOLOV8), (p5, Layout.YOLOV5)):
        spec, engine = spec_of(path)
        assert spec.layout is layout and spec.class_names == ("person", "car", "truck")
        _, box = letterbox(np.zeros((320, 320, 3), np.uint8), spec.input_wh)
        det = YoloSegDecoder(spec, DecodeParams())(engine.infer(
            {"images": np.zeros((1, 3, 320, 320), np.float32)}), box)
        results.append(det)
    a, b = results
    assert len(a) == len(b) == 2
    np.testing.assert_allclose(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.class_ids, [1, 2])
    np.testing.assert_allclose(a.xyxy[0], [40, 40, 160, 160])
    for ma, mb in zip(a.masks, b.masks, strict=True):
        np.testing.assert_array_equal(ma, mb)
    # instance 0's mask: prototype rows/cols 10..40 → input px 40..160, its whole box
    assert a.masks[0].mean() > 0.95


def test_end2end_layout_skips_nms_and_keeps_masks(tmp_path) -> None:
    protos, inst = _instances()
    k, nm = 300, 4
    e2e = np.zeros((1, k, 6 + nm), np.float32)
    for j, ((cx, cy, w, h), cls, score, coefs) in enumerate(inst):
        e2e[0, j] = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, cls, *coefs]
    e2e[0, 2] = [40, 40, 160, 160, 0.1, 1, 1, 0, 1, 0]  # below conf: dropped
    path = constant_model(tmp_path / "e2e.onnx", {"output0": e2e, "output1": protos},
                          metadata={"names": NAMES3, "end2end": "True"})
    spec, engine = spec_of(path)
    assert spec.layout is Layout.END2END
    _, box = letterbox(np.zeros((320, 320, 3), np.uint8), spec.input_wh)
    det = YoloSegDecoder(spec, DecodeParams())(engine.infer(
        {"images": np.zeros((1, 3, 320, 320), np.float32)}), box)
    assert det.class_ids.tolist() == [1, 2]
    np.testing.assert_allclose(det.scores, [0.9, 0.8])
    assert det.masks[1].mean() > 0.95


def test_semantic_head_with_sidecar_names(tmp_path) -> None:
    logits = np.zeros((1, 3, 64, 96), np.float32)
    logits[0, 2, 32:] = 1.0
    path = constant_model(tmp_path / "seg.onnx", {"classes": logits}, input_hw=(64, 96))
    (tmp_path / "seg.yaml").write_text("names: [sky, wall, road]\n")
    spec, _ = spec_of(path)
    assert spec.task is Task.SEMANTIC and spec.heads == (("classes", ("sky", "wall", "road")),)


@pytest.mark.parametrize("outputs, message", [
    ({"scores": np.zeros((1, 10), np.float32)}, r"unknown model outputs: scores \[1, 10\]"),
    ({"a": np.zeros((1, 50, 20), np.float32), "b": np.zeros((1, 50, 20), np.float32)},
     r"unknown model outputs: a \[1, 50, 20\], b \[1, 50, 20\]"),
    ({"output0": np.zeros((1, 20, 30), np.float32), "output1": np.zeros((1, 32, 80, 80), np.float32)},
     r"unknown instance-segmentation layout"),
])
def test_unknown_layouts_name_the_shapes(tmp_path, outputs, message) -> None:
    path = constant_model(tmp_path / "odd.onnx", outputs)
    with pytest.raises(ModelError, match=message):
        spec_of(path)


def test_class_count_mismatch_is_an_error(tmp_path) -> None:
    path = constant_model(tmp_path / "m.onnx", {"output0": np.zeros((1, 4 + 5 + 32, 100), np.float32),
                                                "output1": np.zeros((1, 32, 80, 80), np.float32)},
                          metadata={"names": NAMES3})
    with pytest.raises(ModelError, match="3 class names but the output has 5 classes"):
        spec_of(path)


def test_missing_and_unreadable_model_files(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        open_engine(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        open_engine(bad)
    with pytest.raises(ModelError, match="unsupported model file type"):
        (tmp_path / "m.pt").write_bytes(b"x")
        open_engine(tmp_path / "m.pt")
