"""YAML → the frozen dataclasses of :mod:`pipeline.config.sections`, strictly.

Unknown keys and wrong types are :class:`ConfigError` naming the key and the file.
The CLI's flags override what the file says (:func:`override`).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.sections import Config
from pipeline.errors import ConfigError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists and enum values."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(f"{where}: expected one of {allowed}, got {value!r}") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool or tp is str:
        if isinstance(value, tp):
            return value
    else:
        raise ConfigError(f"{where}: unsupported field type {tp}")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _section(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else str(unknown[0])
        raise ConfigError(f"{key}: unknown key (known: {', '.join(names)})")
    values = {}
    for k, v in data.items():
        tp = hints[k]
        key = f"{where}.{k}" if where else k
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if isinstance(v, bool) and "enabled" in {f.name for f in dataclasses.fields(tp)}:
                v = {"enabled": v}  # `reid: true` is short for `reid: {enabled: true}`
            values[k] = _section(tp, v, key)
        else:
            values[k] = _coerce(v, tp, key)
    return cls(**values)


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    try:
        return _section(Config, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def override(cfg: Config, section: str, **values: Any) -> Config:
    """A copy of ``cfg`` with ``section``'s fields replaced where the value is not None."""
    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        return cfg
    new = dataclasses.replace(getattr(cfg, section), **changes)
    return dataclasses.replace(cfg, **{section: new})
