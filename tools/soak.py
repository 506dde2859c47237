#!/usr/bin/env python3
"""Soak test: run maskstream on a live stream for a long time, watch memory and threads.

    python -m tools.soak --url rtsp://127.0.0.1:8554/cam --model m.onnx [--minutes 10]
    python -m tools.soak --serve clip.mp4 --model m.onnx      # starts tools/rtsp_server.py
    python -m tools.soak ... --metrics-port 9108                # also scrape /metrics each sample

Samples the process's resident memory (VmRSS) and thread count every ``--every`` seconds
and reports growth after the warm-up (the first ``--warmup`` seconds). Not part of CI.
Exits 1 if RSS grew 5% or more after warm-up, or the thread count grew.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipeline.config import Config, MetricsConfig, ModelConfig, OutputConfig, SourceConfig
from pipeline.graph import build_pipeline


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(port: int) -> dict[str, float]:
    """The live source's health as the Prometheus endpoint reports it."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    wanted = ("maskstream_source_connected", "maskstream_source_reconnects_total",
              "maskstream_source_last_frame_age_seconds")
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in wanted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="a live stream")
    src.add_argument("--serve", type=Path, help="an H.264 mp4 to serve with tools/rtsp_server.py")
    ap.add_argument("--model", required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--json", type=Path, help="also write the samples here")
    ap.add_argument("--metrics-port", type=int, default=0,
                    help="serve Prometheus metrics on this port and scrape them every sample")
    args = ap.parse_args()

    server = None
    url = args.url
    if args.serve:
        port = 8599
        server = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).with_name("rtsp_server.py")),
                                   "--video", str(args.serve), "--port", str(port)],
                                  stdout=subprocess.PIPE, text=True)
        if not (server.stdout and server.stdout.readline().startswith("ready")):
            print("soak: error: the RTSP server did not start", file=sys.stderr)
            return 1
        url = f"rtsp://127.0.0.1:{port}/cam"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(source=SourceConfig(uri=url), model=ModelConfig(path=args.model),
                     output=OutputConfig(video=f"{tmp}/soak.mp4", jsonl=f"{tmp}/soak.jsonl"),
                     metrics=MetricsConfig(port=args.metrics_port))
        built = build_pipeline(cfg)
        runner = threading.Thread(target=built.pipeline.run, name="soak-run")
        t0 = time.monotonic()
        runner.start()
        samples = []
        try:
            while time.monotonic() - t0 < args.minutes * 60 and runner.is_alive():
                time.sleep(args.every)
                s = {"t": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(), 1),
                     "threads": threading.active_count(), "frames": built.progress.items,
                     "health": built.sources[0].health.describe() if hasattr(built.sources[0], "health") else ""}
                if args.metrics_port:
                    s["metrics"] = scrape(args.metrics_port)
                samples.append(s)
                print(json.dumps(s), flush=True)
        finally:
            built.pipeline.stop()
            runner.join(30)
            if server is not None:
                server.terminate()
                server.wait(10)
    base = [s for s in samples if s["t"] >= args.warmup]
    if len(base) < 2:
        print("soak: error: too short to judge (raise --minutes or lower --warmup)", file=sys.stderr)
        return 1
    growth = (base[-1]["rss_mb"] - base[0]["rss_mb"]) / base[0]["rss_mb"]
    thread_growth = base[-1]["threads"] - base[0]["threads"]
    summary = {"minutes": round(samples[-1]["t"] / 60, 1), "frames": samples[-1]["frames"],
               "rss_after_warmup_mb": base[0]["rss_mb"], "rss_end_mb": base[-1]["rss_mb"],
               "rss_growth": round(growth, 4), "rss_max_mb": max(s["rss_mb"] for s in base),
               "threads_after_warmup": base[0]["threads"], "threads_end": base[-1]["threads"]}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    return 0 if growth < 0.05 and thread_growth <= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
