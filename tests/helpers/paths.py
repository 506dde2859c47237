"""Where the real fixtures are (beside the project in CI, or $MASKSTREAM_FIXTURES)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("MASKSTREAM_FIXTURES", ROOT.parent / "shared" / "fixtures"))
VIDEOS = FIXTURES / "videos"
MODELS = FIXTURES / "models"
UDACITY = VIDEOS / "udacity_solidWhiteRight.mp4"
YOLO_INT8 = MODELS / "yolov8n-seg_int8.onnx"
TWINLITE = MODELS / "twinlitenet_best.onnx"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"real fixtures not found at {FIXTURES} (they sit beside "
    "the project in CI; set MASKSTREAM_FIXTURES to use another folder)")


def fixture_videos() -> list[Path]:
    return sorted(VIDEOS.glob("*.mp4")) if VIDEOS.is_dir() else []
