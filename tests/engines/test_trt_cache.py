"""Engine cache key: same inputs give the same key, every input changes it; atomic files."""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

from engines.tensorrt.cache import (
    BuildSettings,
    DeviceFacts,
    EngineCache,
    atomic_write,
    cache_key,
    default_cache_dir,
    read_l4t_release,
    sha256_file,
    timing_cache_name,
)

FACTS = DeviceFacts(trt_version="10.13.0.35", gpu_name="NVIDIA H200", compute_capability=(9, 0),
                    sm_count=132, cuda_major=12, driver_major=570, platform="Linux-x86_64",
                    l4t_release="")
PROFILE = (("images", (1, 3, 640, 640), (1, 3, 640, 640), (1, 3, 640, 640)),)
SETTINGS = BuildSettings(profile=PROFILE, precision="fp16", optimization_level=3,
                         hardware_compat="NONE", dla_core=None, version_compatible=False)
ONNX_SHA = "a" * 64
RECIPE = "fp16:autocast:modelopt-0.47.0"

# another value for every field; a field added without an entry here fails the test
OTHER_FACTS = dict(trt_version="10.13.0.36", gpu_name="NVIDIA H100", compute_capability=(8, 9),
                   sm_count=114, cuda_major=13, driver_major=580, platform="Linux-aarch64",
                   l4t_release="R36 (release), REVISION: 4.3")
OTHER_SETTINGS = dict(
    profile=(("images", (1, 3, 640, 640), (4, 3, 640, 640), (8, 3, 640, 640)),),
    precision="int8", optimization_level=5, hardware_compat="AMPERE_PLUS", dla_core=0,
    version_compatible=True)


def key(facts: DeviceFacts = FACTS, settings: BuildSettings = SETTINGS, sha: str = ONNX_SHA,
        recipe: str = RECIPE) -> str:
    return cache_key(sha, recipe, facts, settings)


def test_same_inputs_same_key() -> None:
    same_facts = DeviceFacts(**dataclasses.asdict(FACTS) | {"compute_capability": (9, 0)})
    assert key() == key(facts=same_facts) == key()
    assert len(key()) == 32 and int(key(), 16) >= 0


def test_every_device_fact_changes_the_key() -> None:
    assert {f.name for f in dataclasses.fields(DeviceFacts)} == set(OTHER_FACTS)
    keys = {key()}
    for name, value in OTHER_FACTS.items():
        keys.add(key(facts=dataclasses.replace(FACTS, **{name: value})))
    assert len(keys) == 1 + len(OTHER_FACTS)


def test_every_build_setting_changes_the_key() -> None:
    assert {f.name for f in dataclasses.fields(BuildSettings)} == set(OTHER_SETTINGS)
    keys = {key()}
    for name, value in OTHER_SETTINGS.items():
        keys.add(key(settings=dataclasses.replace(SETTINGS, **{name: value})))
    # DLA core 0 and 1 differ too, not just None vs 0
    keys.add(key(settings=dataclasses.replace(SETTINGS, dla_core=1)))
    assert len(keys) == 2 + len(OTHER_SETTINGS)


def test_onnx_bytes_and_recipe_change_the_key(tmp_path) -> None:
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model-a" * 1000)
    b.write_bytes(b"model-a" * 999 + b"model-b")
    assert sha256_file(a) != sha256_file(b)
    assert key(sha=sha256_file(a)) != key(sha=sha256_file(b))
    assert key(recipe="int8:qdq:max:n=512:frames=sha1") != key(recipe="int8:qdq:max:n=512:frames=sha2")


def test_timing_cache_is_per_device() -> None:
    assert timing_cache_name(FACTS) == timing_cache_name(dataclasses.replace(FACTS))
    assert timing_cache_name(FACTS) != timing_cache_name(dataclasses.replace(FACTS, sm_count=78))


def test_cache_store_and_lookup(tmp_path) -> None:
    cache = EngineCache(tmp_path / "engines")
    k = key()
    assert cache.lookup(k, "yolo") is None
    path = cache.store(k, b"plan-bytes", "yolo")
    assert path == tmp_path / "engines" / f"yolo-{k}.engine"
    assert cache.lookup(k, "yolo") == path and path.read_bytes() == b"plan-bytes"
    assert cache.lookup(key(recipe="other"), "yolo") is None
    path.write_bytes(b"")  # an empty file is not an engine
    assert cache.lookup(k, "yolo") is None
    assert cache.timing_cache_path(FACTS).parent == tmp_path / "engines"


def test_atomic_write_leaves_whole_files_only(tmp_path) -> None:
    target = tmp_path / "sub" / "x.engine"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert target.read_bytes() in payloads  # one whole payload, never a mix
    assert os.listdir(target.parent) == ["x.engine"]  # no temporary files left


def test_atomic_write_failure_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "y.engine"
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MASKSTREAM_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "maskstream" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "maskstream" / "engines"
    monkeypatch.setenv("MASKSTREAM_ENGINE_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert EngineCache().root == tmp_path / "mine"


@pytest.mark.parametrize(("text", "expected"), [
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
     "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n",
     "R36 (release), REVISION: 4.3"),
    ("# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref\n",
     "R35 (release), REVISION: 5.0"),
    ("", ""),
])
def test_l4t_release(tmp_path, text: str, expected: str) -> None:
    f = tmp_path / "nv_tegra_release"
    f.write_text(text)
    assert read_l4t_release(f) == expected
    assert read_l4t_release(tmp_path / "absent") == ""
