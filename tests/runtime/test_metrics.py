"""Latency histograms and the Prometheus endpoint of a real running pipeline."""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Config, MetricsConfig, ModelConfig, OutputConfig, SourceConfig
from pipeline.graph import build_pipeline
from pipeline.runtime.metrics import LatencyHistogram
from tests.helpers import fixed_yolo_model, free_port, make_video


def test_cumulative_counts_agree_with_numpy_within_one_bucket() -> None:
    rng = np.random.default_rng(3)
    samples = np.exp(rng.uniform(np.log(1e-4), np.log(3.0), 5000))
    h = LatencyHistogram()
    for x in samples:
        h.add(float(x))
    bounds = [0.001, 0.01, 0.1, 1.0]
    got = h.cumulative(bounds)
    for bound, n in zip(bounds, got, strict=True):
        # buckets are 5% wide: only samples that close to a bound may land on its other side
        assert (samples <= bound / 1.05).sum() <= n <= (samples <= bound * 1.05).sum()
    assert got == sorted(got) and h.cumulative([100.0]) == [5000]


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_serves_a_running_pipeline_and_closes_with_it(tmp_path) -> None:
    video = make_video(tmp_path / "v.mp4", n=80)
    model = fixed_yolo_model(tmp_path / "m.onnx", work=3)  # slow enough to scrape mid-run
    port = free_port()
    cfg = Config(source=SourceConfig(uri=f"cam7={video}"),
                 model=ModelConfig(path=str(model), workers=1),
                 output=OutputConfig(jsonl=str(tmp_path / "o.jsonl")),
                 metrics=MetricsConfig(port=port))
    cfg = dataclasses.replace(cfg, sources=(f"cam7={video}",))
    before = threading.active_count()
    built = build_pipeline(cfg)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("report", built.pipeline.run()))
    runner.start()
    url = f"http://127.0.0.1:{port}/metrics"
    seen: dict = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and runner.is_alive():
        try:
            seen = _scrape(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
            continue
        if seen.get(("maskstream_stage_frames_total", (("stage", "infer"),)), 0) >= 10:
            break
        time.sleep(0.05)
    runner.join(60)
    assert not runner.is_alive()
    infer = seen[("maskstream_stage_frames_total", (("stage", "infer"),))]
    assert 10 <= infer < 80  # scraped while it ran
    assert seen[("maskstream_stage_seconds_count", (("stage", "infer"),))] == infer
    assert seen[("maskstream_stage_seconds_bucket", (("le", "+Inf"), ("stage", "infer")))] == infer
    assert seen[("maskstream_ring_capacity", (("ring", "captured"),))] == 2
    assert ("maskstream_ring_dropped_total", (("ring", "captured"),)) in seen
    assert seen[("maskstream_capture_to_sink_seconds_count", ())] >= 1
    assert result["report"].frames_in == 80
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=2)  # closed with the run
    assert threading.active_count() == before  # the server thread did not outlive run()


def test_metrics_port_in_use_is_a_clear_error(tmp_path) -> None:
    import socket

    from tests.helpers import run_cli

    video = make_video(tmp_path / "v.mp4", n=5)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("run", str(video), "-m", str(model), "--metrics-port", str(port), timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"maskstream: error: metrics: cannot listen on 127.0.0.1:{port}")
