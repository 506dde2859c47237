"""The archive on this machine (process pool): real fixture videos plus broken files, runs
repeated, a file processed twice at once, workers that keep dying."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from pipeline.archive.discover import InputFile
from pipeline.archive.job import MAX_ATTEMPTS, JobSettings, process_file
from pipeline.archive.layout import FileOutputs, is_temp
from pipeline.archive.result import FileStatus
from pipeline.config import Config, ModelConfig
from tests.helpers import (
    fixed_yolo_model,
    fixture_videos,
    make_video,
    needs_fixtures,
    run_cli,
)

pa_ds = pytest.importorskip("pyarrow.dataset", reason="needs pyarrow: pip install 'maskstream[archive]'")
needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")


def frame_count(video: Path) -> int:
    """Video packets in the container (one a frame for H.264 in mp4), without decoding."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(video)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return int(out.strip())


def jsonl_rows(path: Path, rel: str) -> list[tuple]:
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows += [(rel, r["frame"], d["class_id"], d["score"], tuple(d["bbox"]), d["track_id"])
                 for d in r["detections"]]
    return rows


def parquet_rows(folder: Path) -> list[tuple]:
    table = pa_ds.dataset(folder).to_table().to_pylist()
    return [(r["file"], r["frame"], r["class_id"], round(r["score"], 4),
             tuple(round(v, 2) for v in r["box"]), r["track_id"]) for r in table]


def snapshot(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.name != "files.parquet"}


def truncated_video(path: Path) -> Path:
    """An mp4 with its index first, cut in half: it opens, then breaks off."""
    make_video(path.with_name("whole.tmp.mp4"), n=40, faststart=True)
    data = path.with_name("whole.tmp.mp4").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    path.with_name("whole.tmp.mp4").unlink()
    return path


@needs_fixtures
@needs_ffprobe
def test_fixture_videos_and_two_bad_files_then_run_again(tmp_path) -> None:
    videos = tmp_path / "in"
    videos.mkdir()
    for v in fixture_videos():
        (videos / v.name).symlink_to(v)
    (videos / "cut").mkdir()
    truncated_video(videos / "cut" / "truncated.mp4")
    (videos / "readme.mp4").write_text("this is a text file, not a video\n" * 10)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    out = tmp_path / "out"

    r = run_cli("archive", str(videos), "--model", str(model), "--out", str(out),
                "--no-progress", timeout=600)
    print(r.stdout)
    assert r.returncode == 3, r.stderr  # some failed
    files = {f["path"]: f for f in pa_ds.dataset(out / "files.parquet").to_table().to_pylist()}
    good = [v.name for v in fixture_videos()]
    assert sorted(files) == sorted([*good, "cut/truncated.mp4", "readme.mp4"])
    assert files["readme.mp4"]["status"] == "failed"
    assert "not a readable video" in files["readme.mp4"]["error"]
    assert files["cut/truncated.mp4"]["status"] == "failed"
    assert "truncated" in files["cut/truncated.mp4"]["error"]
    for bad in ("readme", "cut/truncated"):  # no outputs at all, half or whole
        assert not list(out.glob(f"{bad}.*")) and not (out / "detections" / f"{bad}.parquet").exists()
    expected = []
    for name in good:
        stem = Path(name).stem
        n = frame_count(videos / name)
        assert frame_count(out / f"{stem}.mp4") == n, name
        assert len((out / f"{stem}.jsonl").read_text().splitlines()) == n
        assert files[name]["status"] == "ok" and files[name]["frames"] == n
        assert files[name]["error"] is None and files[name]["fps"] > 0
        expected += jsonl_rows(out / f"{stem}.jsonl", name)
    assert sorted(parquet_rows(out / "detections")) == sorted(expected)
    assert not [p for p in out.rglob("*") if is_temp(p.name)]

    before = snapshot(out)
    again = run_cli("archive", str(videos), "--model", str(model), "--out", str(out),
                    "--no-progress", timeout=120)
    assert again.returncode == 3
    assert "this run processed 0, skipped 6 done before" in again.stdout
    assert snapshot(out) == before  # nothing rewritten

    (videos / "readme.mp4").unlink()
    make_video(videos / "readme.mp4", n=12)  # fixed; failures are retried only when asked
    retry = run_cli("archive", str(videos), "--model", str(model), "--out", str(out),
                    "--no-progress", "--retry-failed", timeout=120)
    assert retry.returncode == 3  # the truncated file still fails
    assert "this run processed 2, skipped 4" in retry.stdout
    files = {f["path"]: f for f in pa_ds.dataset(out / "files.parquet").to_table().to_pylist()}
    assert files["readme.mp4"]["status"] == "ok" and files["readme.mp4"]["frames"] == 12


@pytest.fixture
def job(tmp_path):
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "in" / "clip.mp4", n=30)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    cfg = Config(model=ModelConfig(path=str(model), device="cpu", workers=1))
    return InputFile(video, "clip.mp4"), JobSettings(cfg, tmp_path / "out")


def test_a_file_processed_twice_at_once_leaves_one_set_of_rows(job) -> None:
    """What happens when a node is lost after it finished a file but before it said so:
    another worker runs the same file, possibly at the same time."""
    item, settings = job
    results = []
    threads = [threading.Thread(target=lambda: results.append(process_file(item, settings)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.status for r in results] == [FileStatus.OK, FileStatus.OK]
    out = FileOutputs.of(settings.out_dir, item.stem)
    parts = list((settings.out_dir / "detections").rglob("*.parquet"))
    assert parts == [out.parquet]
    assert sorted(parquet_rows(settings.out_dir / "detections")) == sorted(
        jsonl_rows(out.jsonl, item.rel))
    assert len(parquet_rows(settings.out_dir / "detections")) == 60  # 2 instances × 30 frames
    assert not [p for p in settings.out_dir.rglob("*") if is_temp(p.name)]
    out.status.unlink()  # as if the worker died between its outputs and its status record
    assert process_file(item, settings).status is FileStatus.OK
    assert len(parquet_rows(settings.out_dir / "detections")) == 60


def test_a_file_whose_workers_keep_dying_is_given_up(job) -> None:
    item, settings = job
    out = FileOutputs.of(settings.out_dir, item.stem)
    out.attempts.parent.mkdir(parents=True)
    out.attempts.write_text(f"{MAX_ATTEMPTS}\n")  # what dying workers leave behind
    r = process_file(item, settings)
    assert r.status is FileStatus.FAILED
    assert re.search(rf"gave up after {MAX_ATTEMPTS} attempts", r.error)
    assert not out.video.exists() and not out.attempts.exists()
    assert process_file(item, settings).status is FileStatus.FAILED  # and stays so
    settings_retry = JobSettings(settings.config, settings.out_dir, retry_failed=True)
    assert process_file(item, settings_retry).status is FileStatus.OK


def test_half_written_files_from_a_dead_run_are_removed(tmp_path, job) -> None:
    item, settings = job
    stale = settings.out_dir / ".clip.otherhost-123-deadbeef.tmp.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x00" * 100)
    r = run_cli("archive", str(item.path.parent), "--model", settings.config.model.path,
                "--out", str(settings.out_dir), "--no-progress", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "removed 1 half-written file(s) left by an earlier run" in r.stderr
    assert not stale.exists() and (settings.out_dir / "clip.mp4").is_file()
