"""The device data path, run on the CPU (torch), gives what the host path gives: the same
detections, masks and track ids in the JSONL and the same rendered video, frame for frame,
on real fixture video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.helpers import MODELS, VIDEOS, ffprobe, needs_fixtures, run_cli
from tools.bench_clip import trim_clip

FRAMES = 12
# clip → first frame used (the parking lot is empty at the start)
CLIPS = {"udacity_solidWhiteRight": 0, "roboflow_example_video_night_street": 0,
         "intel_car-detection": 190, "udacity_solidWhiteRight_1080p": 0}


def _cut(src: Path, dst: Path, n: int, start: int = 0) -> Path:
    """``n`` frames of ``src`` from ``start``: packets copied (no re-encoding) from the
    start, else re-encoded losslessly."""
    import av

    if start:
        with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
            frames = [f.to_ndarray(format="yuv420p")
                      for k, f in enumerate(inp.decode(video=0)) if start <= k < start + n]
            s = out.add_stream("libx264", rate=inp.streams.video[0].average_rate)
            s.height, s.width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
            s.pix_fmt, s.options = "yuv420p", {"preset": "ultrafast", "qp": "0"}
            for f in frames:
                out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="yuv420p")))
            out.mux(s.encode(None))
        return dst
    return trim_clip(src, dst, n)


def _box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def _frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@needs_fixtures
@pytest.mark.parametrize("name", list(CLIPS))
def test_device_path_on_the_cpu_equals_the_host_path(name, tmp_path) -> None:
    clip = _cut(VIDEOS / f"{name}.mp4", tmp_path / "clip.mp4", FRAMES, CLIPS[name])
    model = MODELS / "yolov8n-seg-640.onnx"
    runs = {}
    for path, extra in (("host", ["--datapath", "host"]),
                        ("device", ["--datapath", "device", "--backend", "torch"])):
        out, meta = tmp_path / f"{path}.mp4", tmp_path / f"{path}.jsonl"
        done = run_cli("run", str(clip), "-m", str(model), "-o", str(out), "-j", str(meta),
                       "--no-progress", *extra, timeout=300)
        assert done.returncode == 0, done.stderr
        runs[path] = (out, [json.loads(line) for line in meta.read_text().splitlines()])
    (host_video, host), (dev_video, dev) = runs["host"], runs["device"]
    assert len(host) == len(dev) == FRAMES
    boxes, worst_box, worst_mask = 0, 1.0, 1.0
    for a, b in zip(host, dev, strict=True):
        assert len(a["detections"]) == len(b["detections"]), a["frame"]
        for da, db in zip(a["detections"], b["detections"], strict=True):
            boxes += 1
            worst_box = min(worst_box, _box_iou(da["bbox"], db["bbox"]))
            ma, mb = mask_utils.decode(da["mask"]), mask_utils.decode(db["mask"])
            worst_mask = min(worst_mask, (ma & mb).sum() / max(1, (ma | mb).sum()))
            assert (da["class_id"], da["track_id"]) == (db["class_id"], db["track_id"])
    print(f"{name}: {boxes} boxes, worst box IoU {worst_box:.4f}, worst mask IoU {worst_mask:.4f}")
    assert boxes > 0, "the clip should have detections to compare"
    assert worst_box >= 0.99 and worst_mask >= 0.95
    assert ffprobe(host_video)["nb_read_frames"] == ffprobe(dev_video)["nb_read_frames"] == str(FRAMES)
    close = [np.mean(np.abs(x.astype(np.int16) - y) <= 2)
             for x, y in zip(_frames(host_video), _frames(dev_video), strict=True)]
    print(f"{name}: rendered frames within 2 levels on {100 * min(close):.3f}% of pixels (worst)")
    assert min(close) >= 0.999
