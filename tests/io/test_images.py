"""Image folders with bad files in them: every unusable image is skipped and named, the
rest go through, and the run fails at the end. Real JPEG/PNG files of fixture frames."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from pipeline.io.images import read_image
from pipeline.io.sources import VideoFileSource
from tests.helpers import MODELS, UDACITY, needs_fixtures, run_cli

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"


@pytest.fixture(scope="module")
def frames():
    src = VideoFileSource(UDACITY)
    try:
        out = []
        for f in src.frames(threading.Event()):
            out.append(f.image)
            if len(out) == 8:
                return out
    finally:
        src.close()
    return out


@needs_fixtures
@pytest.mark.parametrize("params", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
                                    [cv2.IMWRITE_JPEG_QUALITY, 40]],
                         ids=["baseline", "progressive", "q40"])
def test_whole_jpegs_read_as_opencv_reads_them_and_every_cut_is_caught(tmp_path, frames,
                                                                       params) -> None:
    path = tmp_path / "f.jpg"
    cv2.imwrite(str(path), frames[0], params)
    image, why = read_image(path)
    assert why == "" and np.array_equal(image, cv2.imread(str(path)))
    data = path.read_bytes()
    for share in (0.02, 0.3, 0.5, 0.9, 0.999):
        path.write_bytes(data[: int(len(data) * share)])
        image, why = read_image(path)
        assert image is None and why.startswith("truncated JPEG"), (share, why)


@needs_fixtures
def test_a_cut_jpeg_with_a_whole_thumbnail_inside_is_still_caught(tmp_path, frames) -> None:
    _, thumb = cv2.imencode(".jpg", cv2.resize(frames[0], (96, 54)))
    _, main = cv2.imencode(".jpg", frames[0])
    thumb, main = thumb.tobytes(), main.tobytes()
    # an application segment holding a complete JPEG (with its own end marker), as EXIF
    # thumbnails are carried
    segment = b"\xff\xef" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    whole = main[:2] + segment + main[2:]
    path = tmp_path / "t.jpg"
    path.write_bytes(whole)
    image, why = read_image(path)
    assert why == "" and image.shape == frames[0].shape
    path.write_bytes(whole[: len(whole) // 2])
    assert read_image(path) == (None, "truncated JPEG: the image data ends early")


@needs_fixtures
def test_png_cut_short_and_not_an_image(tmp_path, frames) -> None:
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), frames[1])
    assert np.array_equal(read_image(path)[0], frames[1])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert read_image(path) == (None, "truncated PNG: no IEND chunk")
    path.write_bytes(b"")
    assert read_image(path) == (None, "empty file")
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())
    assert read_image(path) == (None, "not a readable image")


@needs_fixtures
def test_folder_skips_and_names_each_bad_image_then_fails(tmp_path, frames) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.{'png' if i == 6 else 'jpg'}"), image)
    cut = (folder / "002.jpg").read_bytes()
    (folder / "002.jpg").write_bytes(cut[: len(cut) // 2])  # a JPEG cut in half
    (folder / "004.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)
                                     .tobytes())  # garbage named .jpg
    png = (folder / "006.png").read_bytes()
    (folder / "006.png").write_bytes(png[: len(png) // 3])
    meta = tmp_path / "o.jsonl"
    r = run_cli("run", str(folder), "-m", str(YOLO_320), "-j", str(meta), "--no-progress",
                timeout=60)
    assert r.returncode == 1
    assert "frames in 5, out: o.jsonl 5" in r.stdout  # every good image, also those after
    assert len(meta.read_text().splitlines()) == 5
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 4, r.stderr  # one per skipped image, then the error
    for line, name, why in zip(lines, ["002.jpg", "004.jpg", "006.png"],
                               ["truncated JPEG", "not a readable image", "truncated PNG"],
                               strict=False):
        assert f"{folder / name}: skipped: {why}" in line
    assert lines[3].startswith(f"maskstream: error: {folder}: 3 of 8 image(s) skipped: "
                               "002.jpg (truncated JPEG")
    assert lines[3].endswith("; 5 frame(s) were processed")
    assert "Premature end" not in r.stderr and "libpng" not in r.stderr
    records = [json.loads(line) for line in meta.read_text().splitlines()]
    assert any(f["detections"] for f in records)
