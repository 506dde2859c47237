"""The device data path on a CUDA GPU: the same results as on the CPU, no host
synchronization outside the allowed ones (``torch.cuda.set_sync_debug_mode("error")``
around the work), a CUDA graph of preprocessing, NVDEC and NVENC where present, and the
per-frame timings printed (run with -s). Skipped without CUDA."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
import torch

from engines import open_engine, read_spec
from pipeline.config import DecodeParams, RenderParams
from pipeline.decode.device_masks import decode_packed
from pipeline.decode.device_yolo import DeviceYoloSegDecoder
from pipeline.infer.device_preprocess import DevicePreprocess
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from pipeline.ragged import RaggedCells
from pipeline.render.device_overlay import DeviceOverlay
from pipeline.render.render import Overlay
from pipeline.transfer import upload
from tests.helpers import MODELS, VIDEOS, ffprobe, needs_fixtures
from tools.bench_device import bench_masks_overlay, candidates

pytestmark = [pytest.mark.gpu, needs_fixtures,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

MODEL = MODELS / "yolov8n-seg-640.onnx"
VIDEO_1080 = VIDEOS / "udacity_solidWhiteRight_1080p.mp4"
CUDA = torch.device("cuda", 0)


@contextlib.contextmanager
def no_sync():
    """Any synchronizing CUDA call inside raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def gpu_ms(fn, repeat: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeat * 1e3


def first_frame(video=VIDEO_1080, seq: int = 100):
    src = VideoFileSource(video)
    try:
        return next(f for f in src.frames(threading.Event()) if f.seq >= seq)
    finally:
        src.close()


def test_preprocess_on_cuda_equals_cpu_without_sync_and_in_a_cuda_graph() -> None:
    spec = read_spec(open_engine(MODEL), MODEL)
    frame = first_frame()
    cpu_in = torch.zeros((1, 3, 640, 640))
    DevicePreprocess(spec, cpu_in)(torch.from_numpy(frame.image))
    static = torch.zeros((1, 3, 640, 640), device=CUDA, dtype=torch.float16)
    pre = DevicePreprocess(spec, static)
    src = pre.source_buffer(frame.wh)
    src.copy_(torch.from_numpy(frame.image))
    pre(src)  # taps and buffers for this size
    with no_sync():
        pre(src)
    assert (static.float().cpu() - cpu_in).abs().max() * 255 < 0.3  # fp16 rounding only
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        pre(src)
        with torch.cuda.graph(graph, stream=side):
            pre(src)
    torch.cuda.current_stream().wait_stream(side)
    static.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert (static.float().cpu() - cpu_in).abs().max() * 255 < 0.3
    print(f"\npreprocess 1080p -> 640 fp16: eager {gpu_ms(lambda: pre(src)):.3f} ms, "
          f"graph {gpu_ms(graph.replay):.3f} ms")


def test_decoder_on_cuda_equals_cpu_with_one_sync() -> None:
    engine = open_engine(MODEL)
    spec = read_spec(engine, MODEL)
    frame = first_frame()
    f = Preprocess(spec).process(frame)
    out = {k: torch.from_numpy(np.asarray(v)) for k, v in
           engine.infer({spec.input_name: f.tensor}).items()}
    cpu_det, cpu_packed = DeviceYoloSegDecoder(spec, DecodeParams(), "cpu")(out, f.letterbox)
    dec = DeviceYoloSegDecoder(spec, DecodeParams(), CUDA)
    gpu_out = {k: v.to(CUDA) for k, v in out.items()}
    dec(gpu_out, f.letterbox)
    with no_sync():  # everything before the one download
        dec.summary(gpu_out[spec.preds_name])
    det, packed = dec(gpu_out, f.letterbox)
    assert np.array_equal(det.xyxy, cpu_det.xyxy) and np.array_equal(det.class_ids, cpu_det.class_ids)
    ious = []
    for a, b in zip(cpu_packed.to_host(), packed.to_host(), strict=True):
        ious.append((a & b).sum() / max(1, (a | b).sum()))
    assert min(ious) >= 0.99
    print(f"\ndecoder: {len(det)} detections, {gpu_ms(lambda: dec(gpu_out, f.letterbox)):.3f} "
          "ms a frame (one sync)")


@pytest.mark.parametrize("n", [5, 30, 100])
def test_masks_and_overlay_on_cuda_equal_cpu_without_sync(n: int) -> None:
    frame, box, protos, coefs, det = candidates(MODEL, VIDEO_1080, n)
    planner = Overlay(RenderParams())
    shifted = dataclasses.replace(det, xyxy=det.xyxy - 4)
    planner.plan(shifted, frame.wh, seq=0)
    plan = planner.plan(det, frame.wh, seq=1)
    cpu_cells = RaggedCells("cpu")
    cpu_packed = decode_packed(protos, coefs, det.mask_boxes, box, cpu_cells)
    expected = DeviceOverlay("cpu").draw(torch.from_numpy(frame.image), plan, cpu_packed).wait()
    cells, overlay = RaggedCells(CUDA), DeviceOverlay(CUDA)
    image, d_protos, d_coefs = upload(frame.image, CUDA), protos.to(CUDA), coefs.to(CUDA)
    overlay.draw(image, plan, decode_packed(d_protos, d_coefs, det.mask_boxes, box, cells)).wait()
    with no_sync():
        packed = decode_packed(d_protos, d_coefs, det.mask_boxes, box, cells)
        done = overlay.draw(image, plan, packed)
    got = done.wait()  # the one synchronization of a rendered frame
    share = float((np.abs(got.astype(np.int16) - expected).max(axis=2) <= 2).mean())
    assert share >= 0.999
    masks_ms = gpu_ms(lambda: decode_packed(d_protos, d_coefs, det.mask_boxes, box, cells))
    draw_ms = gpu_ms(lambda: overlay.draw(image, plan, packed).wait())
    print(f"\n{n} instances at 1080p: masks {masks_ms:.3f} ms, overlay + download "
          f"{draw_ms:.3f} ms, agreement with CPU {share:.5f}")


def test_bench_helper_runs_on_cuda() -> None:
    for n in (5, 30, 100):
        print("\n", bench_masks_overlay(MODEL, VIDEO_1080, "cuda", n, frames=10))


def test_nvdec_file_source_equals_cpu_decode() -> None:
    from pipeline.io.nvdec import NvdecFileSource, nvdec_unavailable_reason

    reason = nvdec_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    stop = threading.Event()
    cpu = VideoFileSource(VIDEOS / "udacity_solidWhiteRight.mp4")
    expected = [(f.pts, f.image) for f in cpu.frames(stop)]
    cpu.close()
    src = NvdecFileSource(VIDEOS / "udacity_solidWhiteRight.mp4")
    t = time.perf_counter()
    got = [(f.pts, f.image) for f in src.frames(stop)]
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    src.close()
    assert len(got) == len(expected)
    shares = []
    for (pa, a), (pb, b) in zip(got, expected, strict=True):
        assert abs(pa - pb) < 1e-6
        assert isinstance(a, torch.Tensor) and a.is_cuda
        shares.append(float((np.abs(a.cpu().numpy().astype(np.int16) - b).max(axis=2) <= 2).mean()))
    print(f"\nNVDEC: {len(got)} frames at {len(got) / elapsed:.0f} FPS; pixels within 2 levels "
          f"of the CPU decode: worst frame {min(shares):.5f}")
    assert min(shares) >= 0.999


def test_nvenc_writes_a_file_or_says_why_not(tmp_path) -> None:
    from pipeline.errors import BackendUnavailable
    from pipeline.io.nvenc import NvencEncoder

    frames = [first_frame(VIDEOS / "udacity_solidWhiteRight.mp4", s).image for s in (0, 10)]
    try:
        enc = NvencEncoder(str(tmp_path / "nv.mp4"), Fraction(25), 960, 540)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))  # H100/H200/A100 have no NVENC
    for i in range(30):
        enc.encode(upload(frames[i % 2], CUDA), i)
    enc.finish()
    assert ffprobe(tmp_path / "nv.mp4")["nb_read_frames"] == "30"
