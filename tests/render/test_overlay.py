"""The device overlay (torch, run here on the CPU) against the host renderer on real
frames with real detections, tracks and trails; its op count and its host syncs."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from engines import open_engine, read_spec
from pipeline.config import DecodeParams, TrackParams
from pipeline.decode.device_masks import PackedMasks
from pipeline.decode.device_yolo import DeviceYoloSegDecoder
from pipeline.decode.masks import mask_boxes
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.errors import ConfigError
from pipeline.infer.device_preprocess import DevicePreprocess
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from pipeline.ragged import RaggedCells
from pipeline.render.device_overlay import DeviceOverlay
from pipeline.render.render import Overlay, Render, RenderParams
from pipeline.track.tracker import Tracker
from pipeline.types import ClassMap, Detections, Frame
from tests.helpers import MODELS, UDACITY, VIDEOS, OpLog, needs_fixtures

MODEL = MODELS / "yolov8n-seg-320.onnx"


def rows_of(tracked: Detections, det: Detections) -> np.ndarray:
    """Which row of ``det`` each row of ``tracked`` is (the tracker reorders and drops)."""
    same = (tracked.xyxy[:, None, :] == det.xyxy[None, :, :]).all(axis=2)
    return same.argmax(axis=1) if len(det) else np.zeros(0, np.int64)


@needs_fixtures
@pytest.mark.parametrize("video, start", [(UDACITY, 100), (VIDEOS / "intel_car-detection.mp4", 190),
                                          (VIDEOS / "roboflow_example_video_night_street.mp4", 250)])
def test_device_path_renders_the_host_frames(video, start) -> None:
    """Host: CPU preprocess, host decoder, tracker, host renderer. Device: torch preprocess,
    device decoder (packed masks), the same tracker, device overlay. 12 consecutive frames
    (so trails grow); every frame within 2 grey levels on >= 99.9% of its pixels."""
    engine = open_engine(MODEL)
    spec = read_spec(engine, MODEL)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    static = torch.zeros((1, 3, spec.input_wh[1], spec.input_wh[0]))
    dpre, ddec = DevicePreprocess(spec, static), DeviceYoloSegDecoder(spec, DecodeParams(), "cpu")
    host_tracker, dev_tracker = Tracker(TrackParams()), Tracker(TrackParams())
    render, planner, overlay = Render(RenderParams()), Overlay(RenderParams()), DeviceOverlay("cpu")
    cells = RaggedCells("cpu")
    src = VideoFileSource(video)
    shares, instances = [], 0
    try:
        for frame in src.frames(threading.Event()):
            if frame.seq < start:
                continue
            if frame.seq >= start + 12:
                break
            f = pre.process(frame)
            host = host_tracker.update(dec(engine.infer({spec.input_name: f.tensor}), f.letterbox),
                                       frame.pts)
            expected = render.process(dataclasses.replace(frame, detections=host)).rendered
            image = torch.from_numpy(frame.image)
            box = dpre(image)
            outputs = {k: torch.from_numpy(v) for k, v in
                       engine.infer({spec.input_name: static.numpy()}).items()}
            det, packed = ddec(outputs, box)
            tracked = dev_tracker.update(det, frame.pts)
            packed = packed.take(rows_of(tracked, det), cells)
            plan = planner.plan(tracked, frame.wh, frame.source_id, frame.seq)
            got = overlay.draw(image, plan, packed).wait()
            diff = np.abs(got.astype(np.int16) - expected).max(axis=2)
            shares.append(float((diff <= 2).mean()))
            instances += len(tracked)
    finally:
        src.close()
    print(f"{video.name}: {instances} instances in {len(shares)} frames; pixels within 2 "
          f"levels: worst frame {min(shares):.5f}")
    assert instances >= 12
    assert min(shares) >= 0.999


def real_detections(n: int) -> tuple[Frame, Detections, PackedMasks]:
    """``n`` real candidate detections (the model's own boxes and masks, before NMS) on a
    real frame, tracked as ids 0..n-1."""
    engine = open_engine(MODEL)
    spec = read_spec(engine, MODEL)
    src = VideoFileSource(UDACITY)
    frame = next(f for f in src.frames(threading.Event()) if f.seq == 100)
    src.close()
    f = Preprocess(spec).process(frame)
    outputs = {k: torch.from_numpy(v) for k, v in engine.infer({spec.input_name: f.tensor}).items()}
    ddec = DeviceYoloSegDecoder(spec, DecodeParams(conf=0.001, iou=1.0), "cpu")
    det, packed = ddec(outputs, f.letterbox)
    keep = np.arange(n)
    det = dataclasses.replace(det.take(keep), track_ids=np.arange(n, dtype=np.int64))
    assert len(det) == n and (mask_boxes(det.xyxy, frame.wh) == det.mask_boxes).all()
    return frame, det, packed.take(keep, RaggedCells("cpu"))


@needs_fixtures
def test_overlay_op_count_does_not_grow_with_instances_and_never_syncs() -> None:
    logs = {}
    for n in (5, 50):
        frame, det, packed = real_detections(n)
        planner, overlay = Overlay(RenderParams()), DeviceOverlay("cpu")
        image = torch.from_numpy(frame.image)
        shifted = dataclasses.replace(det, xyxy=det.xyxy + 3)
        planner.plan(shifted, frame.wh, seq=0)  # a first point for every trail
        plan = planner.plan(det, frame.wh, seq=1)
        assert len(plan.stamps) and len(plan.texts) and len(plan.fills)
        overlay.draw(image, plan, packed).wait()  # buffers for this frame size
        with OpLog() as log:
            overlay.draw(image, plan, packed).wait()
        logs[n] = log
        assert not log.syncs, log.syncs
        print(f"{n} instances ({len(plan.texts)} labels, {len(plan.stamps)} trail stamps): "
              f"{len(log.kernels)} kernels")
    assert logs[5].ops == logs[50].ops


@needs_fixtures
def test_class_maps_agree() -> None:
    src = VideoFileSource(UDACITY)
    frame = next(iter(src.frames(threading.Event())))
    src.close()
    rng = np.random.default_rng(1)
    ids = (rng.random((90, 160)) * 3).astype(np.uint8)  # a coarse map, resized to the frame
    maps = (ClassMap("lanes", ids, ("bg", "a", "b")),)
    params = RenderParams()
    expected = Render(params).process(dataclasses.replace(frame, class_maps=maps)).rendered
    plan = Overlay(params).plan(Detections.empty(), frame.wh)
    got = DeviceOverlay("cpu").draw(torch.from_numpy(frame.image), plan, None, maps,
                                   round(params.class_map_alpha * 256)).wait()
    assert (np.abs(got.astype(np.int16) - expected) <= 2).mean() >= 0.999


def test_rendered_frames_are_pooled() -> None:
    image = np.full((48, 64, 3), 90, np.uint8)
    frame = Frame("s", 0, 0.0, 0, image, detections=Detections.empty())
    render = Render(RenderParams())
    first = render.process(frame).rendered
    second = render.process(frame).rendered
    assert first is not None and second is not None
    assert not np.shares_memory(first, second)  # the first is still held here
    address = first.__array_interface__["data"][0]
    del first
    third = render.process(frame).rendered
    assert third is not None and third.__array_interface__["data"][0] == address


@pytest.mark.parametrize("kwargs, message", [
    ({"line_width": -1}, "line_width"), ({"text_scale": -0.5}, "text_scale"),
    ({"mask_alpha": 1.5}, "mask_alpha"), ({"trail_length": -2}, "trail_length"),
])
def test_render_params_are_checked(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        RenderParams(**kwargs)


@needs_fixtures
def test_render_stage_on_a_device_equals_the_host_stage() -> None:
    """The stage itself, given ``device``: host frames uploaded, host masks packed."""
    engine = open_engine(MODEL)
    spec = read_spec(engine, MODEL)
    pre, dec, tracker = Preprocess(spec), YoloSegDecoder(spec, DecodeParams()), Tracker(TrackParams())
    host, device = Render(RenderParams()), Render(RenderParams(), device="cpu")
    src = VideoFileSource(VIDEOS / "intel_car-detection.mp4")
    n = 0
    try:
        for frame in src.frames(threading.Event()):
            if frame.seq < 195:
                continue
            if frame.seq >= 201:
                break
            f = pre.process(frame)
            det = tracker.update(dec(engine.infer({spec.input_name: f.tensor}), f.letterbox))
            item = dataclasses.replace(frame, detections=det)
            a, b = host.process(item).rendered_pixels(), device.process(item).rendered_pixels()
            assert a is not None and b is not None
            assert (np.abs(a.astype(np.int16) - b).max(axis=2) <= 2).mean() >= 0.999
            n += len(det)
    finally:
        src.close()
    assert n >= 6
