"""tools/bench.py's result as text (the terminal) and as markdown (BENCHMARKS.md, the GPU
check's $OUT): the same figures, medians of rounds with each round's value beside."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown", "text"]


def _rounds(values: list[float], fmt: str = "{:.2f}") -> str:
    return " ".join(fmt.format(v) for v in values)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _contenders(r: dict[str, Any]) -> list[str]:
    return [k for k in r["fps"] if not k.startswith("decode")]


def _masks_row(m: dict[str, Any]) -> tuple[str, str, str]:
    device_key = next(k for k in m if k.startswith("device"))
    return device_key, f"{m['host ms']:.2f}", f"{m[device_key]:.2f}"


def _ratio_label(r: dict[str, Any], name: str) -> str:
    if name == "pipeline / best model-only" and r.get("best_model_only"):
        return f"{name} ({r['best_model_only'].removeprefix('model-only ')})"
    if name == "pipeline / best model-only" and r["torch_model_only"]:
        return f"{name} (torch, batch 1, measured once)"
    return name


def text(r: dict[str, Any]) -> str:
    out = [f"{r['frames']} frames of {r['video'].rsplit('/', 1)[-1]} ({r['frame_size']}), "
           f"{r['model'].rsplit('/', 1)[-1]}, {r['machine']}, median of {r['repeat']} "
           f"alternating rounds (load average at each round's start: "
           f"{_rounds(r['load_per_round'])})"]
    cpu = r.get("cpu_ms_per_frame", {})
    out += [f"  {k:<46}{r['fps'][k]:8.1f} FPS   rounds {_rounds(r['fps_per_round'][k], '{:.1f}')}"
            + (f"   CPU {cpu[k]:.1f} ms/frame" if k in cpu else "") for k in _contenders(r)]
    if r["decode_fps"]:
        out.append("  decode only:")
        out += [f"    {k:<44}{v:8.1f} FPS" for k, v in r["decode_fps"].items()]
    for name, value in r["ratios"].items():
        out.append(f"  {_ratio_label(r, name)}: {value:.2f}x  (rounds: "
                   f"{_rounds(r['ratios_per_round'][name])})")
    if "sequential_ms_per_frame" in r:
        out.append("  sequential loop, ms per frame: " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["sequential_ms_per_frame"].items()))
        out.append(f"  masks + tracking + rendering / inference: "
                   f"{r['masks_track_render_vs_infer']:.1%}")
    if r["torch_model_only"]:
        out.append("  model-only, torch backend:")
        out += [f"    {t['mode']:<24} batch {t['batch']:>3}: {t['ms']:8.2f} ms  {t['fps']:9.1f} FPS"
                for t in r["torch_model_only"]]
    for m in r["masks"]:
        key, host, dev = _masks_row(m)
        out.append(f"  masks + overlay, {m['instances']} instances on {m['frame']}: host {host} ms, "
                   f"{key} {dev}")
    for u in r["ultralytics"]:
        extra = u.get("error") or (f"{u['fps']:.1f} FPS ({u['fps_with_setup']:.1f} with set-up), "
                                   f"{u['detections_per_frame']:.2f} detections/frame, "
                                   f"torch threads {u['torch_threads']}")
        out.append(f"  Ultralytics, round {u['round']}: {extra}")
    for name, summary in r["summaries"].items():
        out.append(f"  {name}, stages (last round):")
        out.append("    " + summary.replace("\n", "\n    "))
    out += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(out)


def markdown(r: dict[str, Any]) -> str:
    out = [f"### {r['model'].rsplit('/', 1)[-1]} on {r['video'].rsplit('/', 1)[-1]} "
           f"({r['frame_size']}, {r['frames']} frames), {r['device']}",
           "", f"{r['date']}; {r['machine']}; backend {r['backend']}, datapath "
           f"{r['datapath']}, decode {r['decode']}; `{r['command']}`; load average at each "
           f"round's start: {_rounds(r['load_per_round'])}.", ""]
    if _contenders(r):
        cpu = r.get("cpu_ms_per_frame", {})
        out += [f"| what | FPS (median of {r['repeat']}) | rounds | CPU ms per frame (median) |",
                "| --- | --- | --- | --- |"]
        out += [f"| {k} | {r['fps'][k]:.1f} | {_rounds(r['fps_per_round'][k], '{:.1f}')} | "
                f"{_ms(cpu.get(k))} |" for k in _contenders(r)]
        out.append("")
    if r["ratios"]:
        out += ["| ratio (per round, median) | value | rounds |", "| --- | --- | --- |"]
        out += [f"| {_ratio_label(r, k)} | {v:.2f}× | {_rounds(r['ratios_per_round'][k])} |"
                for k, v in r["ratios"].items()]
        out.append("")
    if r["decode_fps"]:
        out += ["| decode only | FPS (median) |", "| --- | --- |"]
        out += [f"| {k} | {v:.1f} |" for k, v in r["decode_fps"].items()]
        out.append("")
    if "sequential_ms_per_frame" in r:
        out.append("Sequential loop, ms per frame: " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["sequential_ms_per_frame"].items())
            + f"; masks + tracking + rendering / inference {r['masks_track_render_vs_infer']:.1%}.")
        out.append("")
    if r["torch_model_only"]:
        out += ["| model-only, torch backend | batch | ms per batch | FPS |",
                "| --- | --- | --- | --- |"]
        out += [f"| {t['mode']} | {t['batch']} | {t['ms']:.2f} | {t['fps']:.1f} |"
                for t in r["torch_model_only"]]
        out.append("")
    if r["masks"]:
        key = _masks_row(r["masks"][0])[0]
        out += [f"| mask decoding + overlay, per frame | host ms | {key} |", "| --- | --- | --- |"]
        for m in r["masks"]:
            _, host, dev = _masks_row(m)
            out.append(f"| {m['instances']} instances, {m['frame']} | {host} | {dev} |")
        out.append("")
    if r["ultralytics"]:
        out += ["| Ultralytics track, round | torch threads | FPS | FPS with set-up | "
                "detections/frame |", "| --- | --- | --- | --- | --- |"]
        for u in r["ultralytics"]:
            if "error" in u:
                out.append(f"| {u['round']} | {u['threads'] or 'default'} | {u['error']} | | |")
            else:
                out.append(f"| {u['round']} | {u['torch_threads']} | {u['fps']:.1f} | "
                           f"{u['fps_with_setup']:.1f} | {u['detections_per_frame']:.2f} |")
        out.append("")
    for name, rows in r["stages"].items():
        out += [f"Stages of '{name}' (last round):", "",
                "| stage | items | p50 ms | p99 ms | mean ms | CPU ms/item |",
                "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| {s['stage']} | {s['items']} | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} | "
                f"{_ms(s['mean_ms'])} | {_ms(s['cpu_ms'])} |" for s in rows]
        out.append("")
    out += [f"- {n}" for n in r["notes"]]
    return "\n".join(out).rstrip() + "\n"
