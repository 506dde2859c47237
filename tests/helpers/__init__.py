"""Shared test helpers: the real fixtures (paths), small generated videos (media), tiny
ONNX models (models), a real RTSP server (rtsp), a real MQTT broker (mqtt), what torch
operations device code issues (ops), running the CLI (cli). Tests import them from here."""

from tests.helpers.cli import interrupt, run_cli, start_cli
from tests.helpers.media import clip, ffprobe, make_video, pattern, sample_frames
from tests.helpers.models import constant_model, fixed_yolo_model, mask_iou, spec_of
from tests.helpers.mqtt import MOSQUITTO, Mosquitto, Subscriber, needs_mosquitto
from tests.helpers.ops import SYNC_OPS, VIEW_OPS, OpLog
from tests.helpers.paths import (
    FIXTURES,
    MODELS,
    ROOT,
    TWINLITE,
    UDACITY,
    VIDEOS,
    YOLO_INT8,
    fixture_videos,
    needs_fixtures,
)
from tests.helpers.rtsp import SYSTEM_PYTHON, RtspServer, free_port, needs_rtsp_server

__all__ = [
    "FIXTURES", "MODELS", "MOSQUITTO", "ROOT", "SYNC_OPS", "SYSTEM_PYTHON", "TWINLITE",
    "UDACITY", "VIDEOS", "VIEW_OPS", "YOLO_INT8", "Mosquitto", "OpLog", "RtspServer",
    "Subscriber", "clip", "constant_model", "ffprobe", "fixed_yolo_model", "fixture_videos",
    "free_port", "interrupt", "make_video", "mask_iou", "needs_fixtures", "needs_mosquitto",
    "needs_rtsp_server", "pattern", "run_cli", "sample_frames", "spec_of", "start_cli",
]
