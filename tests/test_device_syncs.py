"""On the device data path a frame meets one host synchronization before the outputs: the
decoder's download of the anchors' boxes and scores. The upload, preprocessing, mask
decoding and the overlay issue no operation that would make the host wait for the device
(checked with a dispatch mode on the CPU; tests/test_device_path_gpu.py checks the same with
CUDA's sync debug mode on a GPU). The model is ONNX Runtime here, outside torch's dispatch:
the torch backend's frozen modules are checked for host syncs, per fixture model, by
tests/engines/test_torch_backend.py (a meta-device probe, since on a CPU every tensor is a
host tensor and a dispatch mode cannot tell a host constant from device data)."""

from __future__ import annotations

import threading

from engines import open_engine, read_spec
from engines.base import Backend
from pipeline.config import DecodeParams, RenderParams, TrackParams
from pipeline.decode import device_yolo
from pipeline.decode.postprocess import Postprocess
from pipeline.infer.device_stages import DeviceInfer, Upload
from pipeline.io.sources import VideoFileSource
from pipeline.render.render import Render
from tests.helpers import MODELS, UDACITY, OpLog, needs_fixtures


@needs_fixtures
def test_one_deliberate_download_and_no_hidden_sync_per_frame(monkeypatch) -> None:
    model = MODELS / "yolov8n-seg-320.onnx"
    engine = open_engine(model, Backend.ONNXRUNTIME, "cpu")
    spec = read_spec(engine, model)
    stages = [Upload("cpu"), DeviceInfer(engine, spec),
              Postprocess(spec, DecodeParams(), TrackParams(), {"src0": 25.0}, device="cpu"),
              Render(RenderParams(), device="cpu")]
    downloads = []
    real = device_yolo.to_host

    def counted(t):  # the real download, counted
        downloads.append(tuple(t.shape))
        return real(t)

    monkeypatch.setattr(device_yolo, "to_host", counted)
    source = VideoFileSource(UDACITY)
    try:
        frames = source.frames(threading.Event())
        for k, frame in enumerate(frames):
            if k == 3:
                break
            downloads.clear()
            with OpLog() as log:
                for stage in stages:
                    frame = stage.process(frame)
            det = frame.detections
            assert det is not None and len(det) > 0
            assert len(downloads) == 1, downloads  # the decoder's one download
            assert log.syncs == [], log.syncs  # nothing else makes the host wait
            # the rendered pixels come down in the output that needs them
            assert frame.rendered is not None
            assert frame.rendered_pixels().shape == (540, 960, 3) and frame.size == (960, 540)
    finally:
        source.close()
        engine.close()


def test_the_probe_sees_a_hidden_sync() -> None:
    import torch

    x = torch.arange(10)
    with OpLog() as log:
        torch.nonzero(x > 3)
        _ = x[x > 5]
    assert log.syncs, "the dispatch probe must flag ops that wait for the device"
