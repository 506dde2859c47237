"""Batched inference across sources: the dynamic-batch tool on real models, and a batched
pipeline that writes exactly what the unbatched one writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from tests.helpers import FIXTURES, needs_fixtures, run_cli
from tools.dynamic_batch import check_batches, make_dynamic
from tools.make_scenes import write_scene

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "engines" / "models" / "demo-seg.onnx"
CONFIG = ROOT / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def dynamic_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dyn") / "demo-dyn.onnx"
    onnx.save(make_dynamic(onnx.load(str(DEMO))), str(out))
    return out


def test_dynamic_batch_copy_of_the_demo_model_batches_exactly(dynamic_demo) -> None:
    assert check_batches(dynamic_demo, batch=3) < 1e-5
    dims = onnx.load(str(dynamic_demo)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 224, 384]


@needs_fixtures
@pytest.mark.parametrize("name", ["yolov8n-seg-random-640.onnx", "twinlitenet_best.onnx"])
def test_dynamic_batch_tool_on_fixture_models(name, tmp_path) -> None:
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "tools.dynamic_batch", str(FIXTURES / "models" / name),
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "matches single runs" in proc.stdout
    assert check_batches(out, batch=2, seed=1) < 1e-5


@needs_fixtures
def test_dynamic_batch_tool_refuses_a_dynamically_quantized_model(tmp_path) -> None:
    """One quantization range over the whole batch: a frame's boxes would depend on its
    neighbours. The tool says so and writes nothing."""
    out = tmp_path / "int8.onnx"
    proc = subprocess.run([sys.executable, "-m", "tools.dynamic_batch",
                           str(FIXTURES / "models" / "yolov8n-seg_int8.onnx"), str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "quantizes dynamically" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _by_frame(path: Path) -> dict[tuple[str, int], list[dict]]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return {(f["source"], f["frame"]): f["detections"] for f in lines}


def test_batched_pipeline_writes_what_the_unbatched_one_writes(dynamic_demo, tmp_path) -> None:
    """Two generated clips through one engine, 4 frames per call: every frame's detections,
    masks and track ids equal the batch-1 run's."""
    a = write_scene(9002, 40, tmp_path)["video"]
    b = write_scene(9003, 40, tmp_path)["video"]
    runs = {}
    for batch in (1, 4):
        out = tmp_path / f"b{batch}.jsonl"
        proc = run_cli("run", f"a={a}", f"b={b}", "-m", str(dynamic_demo), "-c", str(CONFIG),
                       "--batch", str(batch), "--workers", "1", "-j", str(out), "--no-progress")
        assert proc.returncode == 0, proc.stderr
        runs[batch] = (_by_frame(out), proc.stdout)
    one, four = runs[1][0], runs[4][0]
    assert len(one) == 80 and one.keys() == four.keys()
    assert sum(len(d) for d in one.values()) > 100  # the clips have cars and people in them
    for key, dets in one.items():
        other = four[key]
        assert [(d["class_id"], d["track_id"], d["mask"]["counts"]) for d in dets] == \
               [(d["class_id"], d["track_id"], d["mask"]["counts"]) for d in other], key
        for d, e in zip(dets, other, strict=True):
            assert max(abs(x - y) for x, y in zip(d["bbox"], e["bbox"], strict=True)) < 1e-2
    calls = [line for line in runs[4][1].splitlines() if "engine calls" in line]
    assert calls and float(calls[0].split(", ")[1].split()[0]) > 2.0, runs[4][1]


def test_batch_on_a_fixed_batch_model_is_a_clear_error(tmp_path) -> None:
    from tests.helpers import make_video

    video = make_video(tmp_path / "v.mp4", n=5)
    proc = run_cli("run", str(video), "-m", str(DEMO), "--batch", "2", timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "maskstream: error: model.batch 2: demo-seg.onnx has a fixed batch of 1; make a "
        "dynamic-batch copy with python -m tools.dynamic_batch, or set batch 1"]
