"""The archive on a real two-node Ray cluster on 127.0.0.1: the worker node's raylet is
killed while it is in the middle of a file, and the job still ends with every file done
exactly once."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from pipeline.archive.layout import is_temp
from tests.helpers import ffprobe, fixed_yolo_model, make_video, start_cli
from tools.ray_cluster import RayCluster, marked_pids

pytest.importorskip("ray.data", reason="needs Ray Data: pip install 'maskstream[ray]'")
pa_ds = pytest.importorskip("pyarrow.dataset", reason="needs pyarrow")

FILES = 6
FRAMES = 40


def jsonl_detections(path: Path, rel: str) -> list[tuple]:
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows += [(rel, r["frame"], r["pts"], d["class_id"], d["class_name"], d["score"],
                  tuple(d["bbox"]), d["track_id"]) for d in r["detections"]]
    return rows


def writer_pid(temp: Path) -> int:
    """The pid in a temporary output's name (``.a.<host>-<pid>-<hex>.tmp.mp4``)."""
    m = re.search(r"-(\d+)-[0-9a-f]{8}\.tmp\.", temp.name)
    return int(m.group(1)) if m else -1


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if is_temp(p.name)]


def test_worker_node_lost_mid_file_every_file_done_exactly_once(tmp_path, monkeypatch) -> None:
    videos = tmp_path / "in"
    for i in range(FILES):
        folder = videos / f"trip{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        make_video(folder / f"clip{i}.mp4", n=FRAMES)
    model = fixed_yolo_model(tmp_path / "m.onnx", work=1)  # ~80 ms a frame: ~3 s a file
    out = tmp_path / "out"
    with RayCluster(tmp_path / "cluster") as cluster:
        for k, v in cluster.client_env().items():
            monkeypatch.setenv(k, v)  # for the driver, the archive command
        t0 = time.monotonic()
        proc = start_cli("archive", str(videos), "--model", str(model), "--out", str(out),
                         "--ray", cluster.address, "--no-progress")
        try:
            # wait until the worker node is writing a file: a temporary output of one of
            # its processes exists (the token names the writer's pid)
            killed_at = None
            deadline = time.monotonic() + 120
            while killed_at is None and time.monotonic() < deadline and proc.poll() is None:
                on_worker = cluster.worker_pids()
                busy = [p for p in temp_files(out) if p.suffix == ".mp4"
                        and writer_pid(p) in on_worker]
                if busy:
                    cluster.kill_worker_raylet()
                    killed_at = time.monotonic()
                    lost = busy[0].parent / (busy[0].name.split(".")[1] + ".mp4")
                    print(f"killed the worker node's raylet while it wrote {busy[0].name}")
                time.sleep(0.1)
            assert killed_at is not None, "the worker node never started a file"
            stdout, stderr = proc.communicate(timeout=240)
            done_at = time.monotonic()
        finally:
            proc.kill()
    assert not marked_pids(cluster.marker), "cluster processes left running"
    print(stdout)
    print(f"job {done_at - t0:.1f} s in all; finished {done_at - killed_at:.1f} s after the kill")
    assert proc.returncode == 0, stderr
    # what the lost node had half written is gone (its worker cleaned up as it went down, or
    # the driver did at the end), and the file it was on was done again by the other node
    assert temp_files(out) == []
    assert lost.is_file() and ffprobe(lost)["nb_read_frames"] == str(FRAMES)

    files = pa_ds.dataset(out / "files.parquet").to_table().to_pylist()
    assert len(files) == FILES and {f["status"] for f in files} == {"ok"}
    rows = pa_ds.dataset(out / "detections").to_table()
    parquet = sorted((r["file"], r["frame"], r["pts"], r["class_id"], r["class_name"],
                      round(r["score"], 4), tuple(round(v, 2) for v in r["box"]), r["track_id"])
                     for r in rows.to_pylist())
    expected = []
    for f in files:
        stem = Path(f["path"]).with_suffix("")
        assert ffprobe(out / f"{stem}.mp4")["nb_read_frames"] == str(FRAMES)  # complete
        assert f["frames"] == FRAMES
        expected += jsonl_detections(out / f"{stem}.jsonl", f["path"])
    assert len(set(parquet)) == len(parquet), "duplicate rows in the Parquet dataset"
    assert parquet == sorted(expected)
