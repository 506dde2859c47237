"""Outputs: video frame count and rate (ffprobe), JSONL records and RLE round trips."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from pipeline.errors import SinkError
from pipeline.io.jsonl_sink import JsonlSink, RleEncoder
from pipeline.io.sinks import open_sink
from pipeline.io.video_sink import VideoSink
from pipeline.types import ClassMap, Detections, Frame
from tests.helpers import ffprobe, pattern

needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")


def frame(i: int, w: int = 161, h: int = 91, fps: float = 25.0, **kw) -> Frame:
    return Frame("cam", i, i / fps, 0, pattern(i, w, h), **kw)


@needs_ffprobe
@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001), Fraction(25, 2)])
def test_video_keeps_frame_count_and_rate(tmp_path, rate) -> None:
    sink = VideoSink(tmp_path / "o.mp4", rate)
    for i in range(40):
        sink.write(frame(i, fps=float(rate)))  # odd sizes are trimmed to even for yuv420p
    sink.close()
    info = ffprobe(tmp_path / "o.mp4")
    assert info["nb_read_frames"] == "40"
    assert Fraction(info["r_frame_rate"]) == rate
    assert info["codec_name"] == ("h264" if sink.codec == "libx264" else "mpeg4")


def test_rle_round_trip_places_compact_masks_in_the_frame() -> None:
    rng = np.random.default_rng(1)
    m0 = rng.random((20, 30)) > 0.5
    m1 = rng.random((5, 7)) > 0.3
    det = Detections(
        xyxy=np.array([[10.2, 4.5, 39.8, 23.1], [0, 0, 7, 5]], np.float32),
        scores=np.array([0.9, 0.5], np.float32), class_ids=np.array([1, 0], np.int32),
        track_ids=np.array([7, -1]), mask_boxes=np.array([[10, 4, 40, 24], [0, 0, 7, 5]], np.int32),
        masks=(m0, m1), class_names=("person", "car"))
    rle = RleEncoder()
    for i, m in enumerate(det.masks):
        enc = rle.encode(m, tuple(det.mask_boxes[i]), (64, 48))
        full = mask_utils.decode({"size": enc["size"], "counts": enc["counts"].encode()})
        expected = np.zeros((48, 64), np.uint8)
        det.full_mask(i, expected)
        np.testing.assert_array_equal(full, expected)


def test_jsonl_records_in_design_format(tmp_path) -> None:
    det = Detections(
        xyxy=np.array([[1, 2, 11, 12]], np.float32), scores=np.array([0.876543], np.float32),
        class_ids=np.array([1], np.int32), track_ids=np.array([5]),
        mask_boxes=np.array([[1, 2, 11, 12]], np.int32), masks=(np.ones((10, 10), bool),),
        class_names=("person", "car"))
    ids = np.zeros((91, 161), np.uint8)
    ids[50:] = 1
    maps = (ClassMap("da", ids, ("background", "da")),)
    sink = JsonlSink(tmp_path / "o.jsonl")
    sink.write(frame(0, detections=det))
    sink.write(frame(1, class_maps=maps))
    sink.close()
    a, b = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert a["source"] == "cam" and a["frame"] == 0 and a["pts"] == 0.0
    d = a["detections"][0]
    assert d["bbox"] == [1, 2, 11, 12] and d["class_name"] == "car" and d["track_id"] == 5
    assert d["score"] == 0.8765 and d["mask"]["size"] == [91, 161]
    assert mask_utils.area({"size": d["mask"]["size"], "counts": d["mask"]["counts"].encode()}) == 100
    road = {e["class_name"]: e for e in b["class_map"]["da"]}
    assert set(road) == {"background", "da"}
    m = mask_utils.decode({"size": road["da"]["mask"]["size"],
                           "counts": road["da"]["mask"]["counts"].encode()})
    np.testing.assert_array_equal(m, ids)


@pytest.mark.parametrize("uri, message", [
    ("/no/such/folder/o.mp4", "output folder does not exist"),
    ("/no/such/folder/o.jsonl", "cannot write"),
    ("out.txt", "unknown output"),
    ("rtmp://host/live", "not supported"),
])
def test_bad_outputs(uri, message) -> None:
    with pytest.raises(SinkError, match=message):
        open_sink(uri, Fraction(25))


def test_to_supervision_round_trip() -> None:
    m = np.ones((4, 6), bool)
    det = Detections(
        xyxy=np.array([[2, 3, 8, 7]], np.float32), scores=np.array([0.5], np.float32),
        class_ids=np.array([1], np.int32), track_ids=np.array([4]),
        mask_boxes=np.array([[2, 3, 8, 7]], np.int32), masks=(m,), class_names=("a", "b"))
    sv_det = det.to_supervision(resolution_wh=(10, 9))
    assert sv_det.tracker_id.tolist() == [4] and sv_det.class_id.tolist() == [1]
    assert sv_det.mask.shape == (1, 9, 10) and sv_det.mask.sum() == 24
    assert sv_det.mask[0, 3:7, 2:8].all()
