"""The archive's input files: a folder (searched recursively), a glob, or a text file that
lists paths, one a line. Each file gets a relative name that names its outputs."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import ConfigError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".ts", ".mts", ".m2ts",
                            ".webm", ".mpg", ".mpeg", ".flv", ".3gp", ".h264", ".h265"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input: where it is, and its name relative to the input's root (``trip1/a.mp4``)."""

    path: Path  # absolute
    rel: str  # POSIX separators; names the outputs, the Parquet rows and files.parquet

    @property
    def stem(self) -> str:
        """``rel`` without its suffix: ``trip1/a``; outputs are ``<stem>.mp4``, ``.jsonl``."""
        return str(PurePosixPath(self.rel).with_suffix(""))


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _is_glob(spec: str) -> bool:
    return any(c in _GLOB_CHARS for c in spec)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def _from_folder(root: Path, exclude: Path | None) -> list[InputFile]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # never descend into the job's own output folder or hidden folders
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not _inside(here / d, exclude))
        out += [InputFile(here / f, _rel(here / f, root)) for f in filenames
                if Path(f).suffix.lower() in VIDEO_SUFFIXES and not f.startswith(".")]
    return out


def _glob_root(spec: str) -> Path:
    """The folder part of a glob before its first wildcard: ``/data/**/*.mp4`` → ``/data``."""
    parts = Path(spec).parts
    fixed = []
    for part in parts:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed).resolve() if fixed else Path.cwd()


def _from_glob(spec: str, exclude: Path | None) -> list[InputFile]:
    root = _glob_root(spec)
    paths = [Path(p).resolve() for p in glob.glob(spec, recursive=True)]
    return [InputFile(p, _rel(p, root)) for p in paths
            if p.is_file() and not _inside(p, exclude) and not _hidden(p, root)]


def _from_list(listing: Path) -> list[InputFile]:
    """Paths one a line; blank lines and ``#`` comments skipped; relative paths are taken
    from the list's folder. Missing files stay in: the job reports them as failed."""
    base = listing.parent
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{listing}: cannot read the list of files ({exc})") from None
    paths = []
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            p = Path(os.path.expanduser(entry))
            paths.append(Path(os.path.abspath(p if p.is_absolute() else base / p)))
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return [InputFile(p, _rel(p, root)) for p in paths]


def discover(spec: str, exclude: str | Path | None = None) -> list[InputFile]:
    """The files ``spec`` names, sorted by relative name, without duplicates.

    ``spec``: a folder (its video files, recursively, hidden ones skipped), a glob
    (``**`` allowed), one video file, or a text file listing paths. ``exclude``: a folder
    never searched (the job's output folder, which holds .mp4 files of its own).
    Raises :class:`ConfigError` when nothing is found or two inputs would write the same
    outputs (``a.mp4`` and ``a.mov`` in one folder).
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    path = Path(spec).expanduser()
    if path.is_dir():
        found = _from_folder(path.resolve(), skip)
    elif path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            p = path.resolve()
            found = [InputFile(p, p.name)]
        else:
            found = _from_list(path.resolve())
    elif _is_glob(spec):
        found = _from_glob(str(path), skip)
    else:
        raise ConfigError(f"archive input not found: {spec} (expected a folder, a glob such as "
                          "'videos/**/*.mp4', or a text file listing paths)")
    if not found:
        raise ConfigError(f"no video files in {spec} (looked for "
                          f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    unique = sorted({f.rel: f for f in found}.values(), key=lambda f: f.rel)
    by_stem: dict[str, str] = {}
    for f in unique:
        other = by_stem.setdefault(f.stem, f.rel)
        if other != f.rel:
            raise ConfigError(f"{other} and {f.rel} would write the same outputs "
                              f"({f.stem}.mp4); rename one or archive them separately")
    return unique
