"""Checking a model path before any backend is loaded, with a message that says what
is wrong with it: missing, a folder (also one named ``x.onnx``), or a file type no
backend reads."""

from __future__ import annotations

from pathlib import Path

from engines.errors import ModelError

# file types a backend of this build loads (.engine / .plan: TensorRT's)
MODEL_SUFFIXES = (".onnx", ".engine", ".plan")


def check_model_path(path: str | Path) -> Path:
    """``path`` as a Path if it names a model file of a known type; else ModelError."""
    path = Path(path)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        hint = ""
        if not path.parent.is_dir():
            hint = f" (folder {path.parent} does not exist either)"
        raise ModelError(f"model file not found: {path}{hint}")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        kind = f"type {suffix!r}" if suffix else "type: the name has no suffix"
        raise ModelError(
            f"{path.name}: unsupported model file {kind} (this build runs "
            f"{', '.join(MODEL_SUFFIXES)} models)")
    if not path.is_file():
        raise ModelError(f"{path}: not a regular file (expected a {suffix} model file)")
    return path


def _folder(path: Path) -> Path:
    """A folder given as the model: name the model files inside, if any."""
    try:
        inside = sorted(p.name for p in path.iterdir()
                        if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    except OSError:  # unreadable folder: say what it is all the same
        inside = []
    if inside:
        shown = ", ".join(inside[:3]) + (", …" if len(inside) > 3 else "")
        raise ModelError(f"{path} is a folder, not a model file; give one of the models in "
                         f"it ({shown})")
    raise ModelError(f"{path} is a folder, not a model file (expected a "
                     f"{' or '.join(MODEL_SUFFIXES)} file)")
