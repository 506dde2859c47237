"""Finding the archive's inputs: folders, globs, lists; names; what is left out."""

from __future__ import annotations

import pytest

from pipeline.archive.discover import discover
from pipeline.errors import ConfigError


@pytest.fixture
def tree(tmp_path):
    for name in ["a.mp4", "b.MOV", "notes.txt", "sub/c.mkv", "sub/deep/d.mp4", ".hidden.mp4",
                 ".cache/e.mp4", "out/done.mp4", "out/.archive/x.mp4"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return tmp_path


def rels(files) -> list[str]:
    return [f.rel for f in files]


def test_folder_is_searched_recursively_without_hidden_files_or_the_output(tree) -> None:
    files = discover(str(tree), exclude=tree / "out")
    assert rels(files) == ["a.mp4", "b.MOV", "sub/c.mkv", "sub/deep/d.mp4"]
    assert all(f.path.is_absolute() and f.path.is_file() for f in files)
    assert [f.stem for f in files] == ["a", "b", "sub/c", "sub/deep/d"]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("*.mp4", ["a.mp4"]),
    ("**/*.mp4", ["a.mp4", "sub/deep/d.mp4"]),  # the output folder is excluded
    ("sub/**/*", ["c.mkv", "deep/d.mp4"]),  # named from the folder before the wildcard
])
def test_globs(tree, pattern, expected) -> None:
    assert rels(discover(str(tree / pattern), exclude=tree / "out")) == expected


def test_list_file_with_comments_relative_and_missing_paths(tree) -> None:
    listing = tree / "sub" / "files.txt"
    listing.write_text(f"# trips\n\ndeep/d.mp4\n{tree / 'a.mp4'}\nmissing.mp4\ndeep/d.mp4\n")
    files = discover(str(listing))
    # named from the folder the entries share; a missing file stays in (reported as failed)
    assert rels(files) == ["a.mp4", "sub/deep/d.mp4", "sub/missing.mp4"]
    assert not files[2].path.exists()


def test_one_video_file(tree) -> None:
    assert rels(discover(str(tree / "sub" / "c.mkv"))) == ["c.mkv"]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda t: str(t / "nope"), "archive input not found"),
    (lambda t: str(t / "*.avi"), "no video files in"),
    (lambda t: (t / "empty").mkdir() or str(t / "empty"), "no video files in"),
    (lambda t: (t / "a.mov").write_bytes(b"") or str(t), "a.mov and a.mp4 would write the same"),
])
def test_errors_name_the_problem(tree, setup, message) -> None:
    with pytest.raises(ConfigError, match=message):
        discover(setup(tree), exclude=tree / "out")
