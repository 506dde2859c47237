"""Strict YAML config: every shipped config loads; bad keys, types and values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config, TrackerKind, load_config, override
from pipeline.errors import ConfigError
from pipeline.graph import expand_outputs, named_sources

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path) -> None:
    assert isinstance(load_config(path), Config)


def test_values_are_typed_and_converted(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("decode:\n  conf: 1\n  classes: [0, 2]\ntrack:\n  kind: ocsort\n"
                 "sources: [cam1=rtsp://a/b, clip.mp4]\n")
    cfg = load_config(p)
    assert cfg.decode.conf == 1.0 and cfg.decode.classes == (0, 2)
    assert cfg.track.kind is TrackerKind.OCSORT
    assert named_sources(cfg) == [("cam1", "rtsp://a/b"), ("src1", "clip.mp4")]


@pytest.mark.parametrize("text, message", [
    ("decode:\n  conff: 0.3\n", "c.yaml: decode.conff: unknown key"),
    ("bogus: 1\n", "c.yaml: bogus: unknown key"),
    ("model:\n  workers: two\n", "model.workers: expected int, got 'two'"),
    ("track:\n  kind: kalman\n", "track.kind: expected one of 'bytetrack'"),
    ("render:\n  masks: 1\n", "render.masks: expected bool, got 1"),
    ("decode: [1, 2]\n", "decode: expected a mapping"),
    ("decode:\n  iou: 1.5\n", "decode.iou: expected a number in [0, 1], got 1.5"),
    ("runtime:\n  overflow: sometimes\n", "runtime.overflow: expected one of"),
    ("live:\n  transport: sctp\n", "live.transport: expected one of 'tcp', 'udp', got 'sctp'"),
    ("runtime:\n  queue_size: 1000000000\n",
     "runtime.queue_size: expected a number in [1, 64], got 1000000000"),
    ("runtime:\n  queue_size: 0\n", "runtime.queue_size: expected a number in [1, 64], got 0"),
    ("track:\n  reid: {window: -1}\n", "track.reid.window: expected a number >= 0, got -1.0"),
    ("model:\n  device: gpu\n", "model.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("model:\n  backend: tflite\n", "model.backend: expected one of 'auto', 'onnxruntime'"),
    ("decode:\n  conf: [\n", "not valid YAML at line"),
])
def test_bad_configs_name_the_key_and_file(tmp_path, text, message) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert message in str(err.value) and str(p) in str(err.value)


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_reid_shorthand_and_section(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("track:\n  reid: true\n")
    assert load_config(p).track.reid.enabled and load_config(p).track.reid.window == 2.0
    p.write_text("track:\n  reid: {enabled: true, window: 5, edge_px: 0}\n")
    reid = load_config(p).track.reid
    assert (reid.enabled, reid.window, reid.edge_px) == (True, 5.0, 0.0)


def test_loading_a_config_imports_no_torch() -> None:
    """Config is read before anything heavy: a config error comes back in well under a
    second, and tools that only read configs never pay for torch."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.config import load_config; load_config(None); "
            "print('torch' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["False", "False"]


def test_flags_override_the_file() -> None:
    cfg = override(Config(), "decode", conf=0.5, iou=None)
    assert cfg.decode.conf == 0.5 and cfg.decode.iou == 0.7


def test_output_templates() -> None:
    assert expand_outputs(["o_{source}.mp4", "all.jsonl"], ["a", "b"]) == [
        ("o_a.mp4", "a"), ("o_b.mp4", "b"), ("all.jsonl", None)]
    with pytest.raises(ConfigError, match=r"cannot share one video; put \{source\}"):
        expand_outputs(["one.mp4"], ["a", "b"])
    with pytest.raises(ConfigError, match="source names must differ"):
        named_sources(Config(sources=("x=a.mp4", "x=b.mp4")))
