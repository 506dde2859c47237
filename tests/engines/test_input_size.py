"""Models whose input size is dynamic: the size comes from the sidecar, the metadata or
(YOLO-seg) the prototype output, else a clear error before any output is opened; a size
the graph cannot run at is caught at start-up."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engines import open_engine, read_spec
from engines.errors import ModelError
from engines.spec import check_runs
from tests.helpers import MODELS, UDACITY, clip, constant_model, needs_fixtures, run_cli

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"


def dynamic_input(src, dst, drop: tuple[str, ...] = ("imgsz",)):
    """A copy of ``src`` whose input height and width are symbolic, without the metadata
    keys ``drop`` (what a hand-edited or non-Ultralytics export looks like)."""
    import onnx

    model = onnx.load(str(src))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in drop]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return dst


def spec_of(path):
    engine = open_engine(path, "onnxruntime", "cpu")
    try:
        return read_spec(engine, path), engine
    except Exception:
        engine.close()
        raise


@needs_fixtures
def test_yolo_seg_with_dynamic_input_runs_at_its_prototypes_size(tmp_path) -> None:
    model = dynamic_input(YOLO_320, tmp_path / "dyn.onnx")
    spec, engine = spec_of(model)
    engine.close()
    assert spec.input_wh == (320, 320)  # 80×80 prototypes, stride 4
    video = clip(UDACITY, tmp_path / "v.mp4", 0, 12)
    outs = []
    for m in (YOLO_320, model):
        meta = tmp_path / f"{m.stem}.jsonl"
        r = run_cli("run", str(video), "-m", str(m), "-j", str(meta), "--no-progress", timeout=60)
        assert r.returncode == 0, r.stderr
        outs.append([json.loads(line)["detections"] for line in meta.read_text().splitlines()])
    assert outs[0] == outs[1] and sum(map(len, outs[0])) > 0  # as the static model


def semantic_dynamic(tmp_path):
    path = constant_model(tmp_path / "lanes.onnx", {"seg": np.zeros((1, 2, 48, 64), np.float32)},
                          input_hw=(48, 64))
    return dynamic_input(path, path)


def test_dynamic_input_without_a_size_is_an_error_before_outputs_open(tmp_path) -> None:
    model = semantic_dynamic(tmp_path)
    with pytest.raises(ModelError) as err:
        spec_of(model)
    assert str(err.value) == (
        "lanes.onnx: input images [1, 3, 'height', 'width'] has a dynamic size and the model "
        f"does not say which to use; put 'imgsz: [height, width]' in {tmp_path}/lanes.yaml (or "
        "export it with Ultralytics, which records imgsz in the metadata)")
    from tests.helpers import make_video

    video, meta = make_video(tmp_path / "v.mp4", n=3), tmp_path / "o.jsonl"
    r = run_cli("run", str(video), "-m", str(model), "-j", str(meta), timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == f"maskstream: error: {err.value}"
    assert not meta.exists()  # nothing left behind


@pytest.mark.parametrize("imgsz, wh", [("48", (48, 48)), ("[48, 64]", (64, 48))])
def test_sidecar_imgsz_sets_the_size(tmp_path, imgsz, wh) -> None:
    model = semantic_dynamic(tmp_path)
    model.with_suffix(".yaml").write_text(f"imgsz: {imgsz}\n")
    spec, engine = spec_of(model)
    engine.close()
    assert spec.input_wh == wh


@pytest.mark.parametrize("imgsz", ["[48]", "-3", "big"])
def test_bad_imgsz_is_named(tmp_path, imgsz) -> None:
    model = semantic_dynamic(tmp_path)
    model.with_suffix(".yaml").write_text(f"imgsz: {imgsz}\n")
    with pytest.raises(ModelError, match=r"lanes.onnx: imgsz: expected a size or \[height, width\]"):
        spec_of(model)


@needs_fixtures
def test_a_size_the_graph_cannot_run_at_is_caught_at_start_up(tmp_path) -> None:
    model = dynamic_input(YOLO_320, tmp_path / "dyn.onnx")
    spec, engine = spec_of(model)
    check_runs(engine, spec)  # at its own size it runs
    engine.close()
    model.with_suffix(".yaml").write_text("imgsz: 640\n")  # exported at 320, not 640
    spec, engine = spec_of(model)
    try:
        with pytest.raises(ModelError, match=r"dyn.onnx does not run at its input size 640x640 "
                           r"\(set imgsz in .*dyn.yaml to the size it was exported at\): "
                           r".*Reshape"):
            check_runs(engine, spec)
    finally:
        engine.close()
