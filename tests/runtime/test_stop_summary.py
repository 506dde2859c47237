"""A stop (SIGINT/SIGTERM) at any moment: every frame read is written by each output or
counted as dropped in the summary; none goes missing in between."""

from __future__ import annotations

import random
import re
import signal
import time

import pytest

from tests.helpers import fixed_yolo_model, make_video, start_cli

SUMMARY = re.compile(r"frames in (\d+), out: (.+); dropped (\d+);")
OUTPUT = re.compile(r"(\S+) (\d+)(?: \(\+(\d+) dropped\))?")


def parse(stdout: str) -> tuple[int, dict[str, tuple[int, int]], int]:
    m = SUMMARY.search(stdout)
    assert m is not None, stdout
    outputs = {}
    for part in m.group(2).split(", "):
        o = OUTPUT.fullmatch(part)
        assert o is not None, part
        outputs[o.group(1)] = (int(o.group(2)), int(o.group(3) or 0))
    return int(m.group(1)), outputs, int(m.group(3))


@pytest.mark.parametrize("seed", range(6))
def test_every_frame_is_in_out_or_dropped_after_a_stop(seed, tmp_path) -> None:
    rng = random.Random(seed)
    clip = make_video(tmp_path / "clip.mp4", n=400, w=320, h=240)
    model = fixed_yolo_model(tmp_path / "m.onnx", work=4)
    proc = start_cli("run", str(clip), "-m", str(model), "-o", str(tmp_path / "o.mp4"),
                     "-j", str(tmp_path / "o.jsonl"), "--no-progress")
    jsonl = tmp_path / "o.jsonl"
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not (
                jsonl.exists() and jsonl.stat().st_size):
            time.sleep(0.05)  # until frames come out: the pipeline runs
        time.sleep(rng.uniform(0.0, 2.5))
        assert proc.poll() is None, "the run ended before the stop"
        proc.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    frames_in, outputs, dropped = parse(out)
    assert "(stopped early)" in out and 0 < frames_in < 400
    assert set(outputs) == {"o.mp4", "o.jsonl"}
    for name, (written, lost) in outputs.items():
        assert written + lost + dropped == frames_in, (name, out)
    lines = jsonl.read_text().splitlines()
    assert len(lines) == outputs["o.jsonl"][0]
