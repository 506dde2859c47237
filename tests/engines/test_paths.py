"""Model paths are checked before a backend loads them, and each mistake says what it is."""

from __future__ import annotations

import pytest

from engines.errors import ModelError
from engines.paths import check_model_path
from tests.helpers import fixed_yolo_model, run_cli


def test_a_model_file_passes(tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.ONNX")
    assert check_model_path(str(model)) == model


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "nope.onnx", "model file not found: {t}/nope.onnx"),
    (lambda t: t / "no" / "m.onnx", "model file not found: {t}/no/m.onnx (folder {t}/no does not "
     "exist either)"),
    (lambda t: (t / "models").mkdir() or t / "models",
     "{t}/models is a folder, not a model file (expected a .onnx or .engine or .plan file)"),
    (lambda t: (t / "x.onnx").mkdir() or t / "x.onnx",
     "{t}/x.onnx is a folder, not a model file (expected a .onnx or .engine or .plan file)"),
    (lambda t: (t / "d").mkdir() or fixed_yolo_model(t / "d" / "seg.onnx").parent,
     "{t}/d is a folder, not a model file; give one of the models in it (seg.onnx)"),
    (lambda t: (t / "m.pt").write_bytes(b"x") and t / "m.pt",
     "m.pt: unsupported model file type '.pt' (this build runs .onnx, .engine, .plan models"),
    (lambda t: (t / "model").write_bytes(b"x") and t / "model",
     "model: unsupported model file type: the name has no suffix"),
], ids=["missing", "missing folder", "folder", "folder named x.onnx", "folder with models",
        "other type", "no suffix"])
def test_each_wrong_model_path_says_what_is_wrong(tmp_path, make, message) -> None:
    with pytest.raises(ModelError) as err:
        check_model_path(make(tmp_path))
    assert str(err.value).startswith(message.format(t=tmp_path)), str(err.value)


@pytest.mark.parametrize("command", ["run", "info"])
def test_cli_names_a_folder_given_as_the_model(tmp_path, command) -> None:
    (tmp_path / "x.onnx").mkdir()
    argv = ["info", str(tmp_path / "x.onnx")] if command == "info" else \
        ["run", str(tmp_path / "v.mp4"), "-m", str(tmp_path / "x.onnx")]
    if command == "run":
        from tests.helpers import make_video

        make_video(tmp_path / "v.mp4", n=2)
    r = run_cli(*argv, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"maskstream: error: {tmp_path}/x.onnx is a folder, not a "
                                "model file (expected a .onnx or .engine or .plan file)")
