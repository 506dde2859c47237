"""Archive throughput on this machine: the process pool against Ray, on the same files.

    python -m tools.archive_bench --model M VIDEO [VIDEO ...] [--repeat N]

Runs ``maskstream archive`` over links to the videos, into a fresh output folder each time:

- ``pool 1×2``: one process with two engines
- ``pool 2×1``: two processes with one engine each (the default on two cores)
- ``ray 2×1``: a two-node Ray cluster on 127.0.0.1 (one CPU a node, started before the
  clock runs: a cluster outlives jobs), two actors with one engine each

Wall time is the whole command (driver start, workers loading the model, every file).
The layouts take turns for ``--repeat`` rounds and the best round of each is kept. Prints
frames/s and each layout's ratio to the first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.ray_cluster import RayCluster


def _archive(videos: Path, model: str, out: Path, extra: list[str],
             env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, frames archived) of one ``maskstream archive`` run."""
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pipeline", "archive", str(videos), "--model", model,
                        "--out", str(out), "--no-progress", *extra], capture_output=True,
                       text=True, env={**os.environ, **(env or {})}, timeout=3600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"archive failed ({r.returncode}): {r.stderr[-2000:]}")
    frames = sum(pq.read_table(out / "files.parquet").column("frames").to_pylist())
    return wall, frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--model", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        work = Path(tmp)
        folder = work / "in"
        folder.mkdir()
        for v in args.videos:
            (folder / v.name).symlink_to(v.resolve())
        for engines in (1, 2):  # engine instances per worker (model.workers)
            (work / f"engines{engines}.yaml").write_text(f"model:\n  workers: {engines}\n")
        layouts = {"pool 1×2": ["--workers", "1", "--config", str(work / "engines2.yaml")],
                   "pool 2×1": ["--workers", "2", "--config", str(work / "engines1.yaml")],
                   "ray 2×1": ["--workers", "2", "--config", str(work / "engines1.yaml")]}
        best: dict[str, tuple[float, int]] = {}
        with RayCluster(work / "cluster") as cluster:
            layouts["ray 2×1"] += ["--ray", cluster.address]
            # the layouts take turns, round after round, so a change in the machine's load
            # touches all of them alike; the best round of each is kept
            for k in range(args.repeat):
                for name, extra in layouts.items():
                    env = cluster.client_env() if name.startswith("ray") else None
                    wall, frames = _archive(folder, args.model,
                                            work / f"out-{k}-{name.replace(' ', '')}", extra, env)
                    print(f"round {k + 1}: {name:<10} {wall:7.1f} s  {frames / wall:6.1f} "
                          "frames/s", flush=True)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, frames)
        runs = [(name, wall, frames) for name, (wall, frames) in best.items()]

    base = runs[0][2] / runs[0][1]
    print("\nlayout      frames/s  ratio to pool 1×2")
    for name, wall, frames in runs:
        print(f"{name:<10} {frames / wall:9.1f}  {frames / wall / base:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
