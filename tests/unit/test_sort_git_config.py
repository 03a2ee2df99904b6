"""sort-git-config, the helper that makes git's system config follow from its content: run
here on the host's git, as the apt step runs it in the image."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import PROJECT_DIR

HELPER = PROJECT_DIR / "dockerfiles" / "files" / "common" / "sort-git-config"


def git_config(path: Path, *argv: str) -> None:
    subprocess.run(["git", "config", "--file", str(path), *argv], check=True)


def sort(path: Path) -> None:
    subprocess.run([str(HELPER), str(path)], check=True)


def test_keys_written_in_any_order_come_out_the_same_and_values_keep_theirs(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    # git-lfs's install writes these four in Go's random map order
    keys = [("filter.lfs.smudge", "git-lfs smudge -- %f"), ("filter.lfs.required", "true"),
            ("filter.lfs.clean", "git-lfs clean -- %f"), ("filter.lfs.process", "git-lfs filter-process")]
    for path, order in ((first, keys), (second, list(reversed(keys)))):
        for key, value in order:
            git_config(path, key, value)
        git_config(path, "--add", "safe.directory", "/workspace")
        git_config(path, "--add", "safe.directory", "/srv")
    assert first.read_bytes() != second.read_bytes()
    sort(first)
    sort(second)
    assert first.read_bytes() == second.read_bytes()
    listed = subprocess.run(["git", "config", "--file", str(first), "--list"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert listed == ["filter.lfs.clean=git-lfs clean -- %f", "filter.lfs.process=git-lfs filter-process",
                      "filter.lfs.required=true", "filter.lfs.smudge=git-lfs smudge -- %f",
                      "safe.directory=/workspace", "safe.directory=/srv"]  # one key's values keep their order


def test_a_sorted_file_is_left_untouched_and_a_missing_one_is_no_error(tmp_path: Path) -> None:
    path = tmp_path / "gitconfig"
    git_config(path, "b.key", "2")
    git_config(path, "a.key", "1")
    sort(path)
    os.utime(path, (0, 0))
    sort(path)
    assert path.stat().st_mtime == 0  # not written again: the step's layer keeps the lower layer's file
    sort(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
