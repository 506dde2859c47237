"""The end-of-run summary table."""

from __future__ import annotations

import math

from pipeline.runtime.run_report import OutputReport, RunReport


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def _output(o: OutputReport) -> str:
    text = f"{o.name.removeprefix('sink:')} {o.written}"
    if o.dropped:
        text += f" (+{o.dropped} dropped)"
    return text + (" FAILED" if o.error is not None else "")


def format_report(report: RunReport) -> str:
    """The summary: every frame read is written or dropped, per output; then per stage."""
    outs = ", ".join(_output(o) for o in report.outputs)
    lines = [
        f"frames in {report.frames_in}, out: {outs}; dropped {report.dropped}; "
        f"{report.wall_s:.1f} s, {report.fps:.1f} FPS"
        + (" (stopped early)" if report.stopped_early else ""),
        f"{'stage':<22}{'items':>7}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'cpu ms':>9}",
    ]
    for s in report.stages:
        h = s.latency
        lines.append(f"{s.name:<22}{s.items:>7}{_ms(h.percentile(50)):>9}"
                     f"{_ms(h.percentile(99)):>9}{_ms(h.mean):>9}"
                     f"{_ms(s.cpu_ms_per_item / 1000):>9}")
    lines += [f"{s.name}: {s.batches} engine calls, {s.mean_batch:.2f} frames each"
              for s in report.stages if s.batches and s.mean_batch > 1]
    for src in report.sources:
        health = getattr(src, "health", None)
        if health is not None:
            lines.append(f"{src.name} ({src}): {health.describe()}")
    for o in report.outputs:
        health = getattr(o.sink, "health", None)
        if health is not None:
            lines.append(f"{o.name}: {health.describe()}")
    e = report.end_to_end
    lines.append(f"{'capture → sink':<22}{e.count:>7}{_ms(e.percentile(50)):>9}"
                 f"{_ms(e.percentile(99)):>9}{_ms(e.mean):>9}")
    return "\n".join(lines)
