"""The layout's rules, checked on the code itself: engines/ stands alone, every error is a
MaskstreamError, nothing edits sys.path, tests use only what tools/ export, files stay
small."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path

import pytest

from engines.errors import MaskstreamError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "engines")


def _files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_engines_import_nothing_from_pipeline() -> None:
    bad = [(p.relative_to(ROOT), m) for p in _files("engines") for m in _imports(p)
           if m == "pipeline" or m.startswith("pipeline.")]
    assert not bad


def test_the_probe_finds_a_pipeline_import(tmp_path) -> None:
    p = tmp_path / "x.py"
    p.write_text("def f():\n    from pipeline.errors import SinkError\n")
    assert "pipeline.errors" in _imports(p)


def test_nothing_edits_sys_path() -> None:
    bad = [p.relative_to(ROOT) for p in _files("pipeline", "engines", "tools", "tests")
           if p.name != "test_layout.py" and "sys.path" in p.read_text()]
    assert not bad


def _raised_classes(path: Path, module: object) -> list[tuple[int, type]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
            continue
        func = node.exc.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        cls = (getattr(module, name, None) or getattr(builtins, name, None)) if name else None
        if inspect.isclass(cls) and issubclass(cls, BaseException):
            found.append((node.lineno, cls))
    return found


@pytest.mark.parametrize("path", [p for p in _files(*PACKAGES) if p.name != "__main__.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_error_raised_is_a_maskstream_error(path: Path) -> None:
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    try:
        module = importlib.import_module(dotted)
    except ImportError as exc:  # an optional backend's module (tensorrt, …)
        pytest.skip(f"{dotted}: {exc}")
    bad = [(line, cls.__name__) for line, cls in _raised_classes(path, module)
           if not issubclass(cls, MaskstreamError)
           and cls.__name__ not in ("KeyboardInterrupt", "NotImplementedError")]
    assert not bad, f"{path.name}: raises builtins directly: {bad}"


def test_the_probe_sees_a_builtin_raised(tmp_path) -> None:
    p = tmp_path / "x.py"
    p.write_text("def f():\n    raise ValueError('x')\n")
    assert [cls for _, cls in _raised_classes(p, object())] == [ValueError]


def test_errors_also_inherit_the_matching_builtin() -> None:
    from pipeline import errors

    expected = {"ConfigError": ValueError, "ModelError": ValueError, "SourceError": OSError,
                "SinkError": OSError, "SourceTimeout": TimeoutError,
                "BackendUnavailable": ImportError, "EngineError": RuntimeError}
    for name, builtin in expected.items():
        cls = getattr(errors, name)
        assert issubclass(cls, MaskstreamError) and issubclass(cls, builtin), name


def test_tests_use_only_what_tools_export() -> None:
    bad = []
    for path in _files("tests"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tools."):
                exported = getattr(importlib.import_module(node.module), "__all__", ())
                bad += [(path.name, node.module, a.name) for a in node.names
                        if a.name not in exported]
    assert not bad


@pytest.mark.parametrize("path", _files(*PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400
