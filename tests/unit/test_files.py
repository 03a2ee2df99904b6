"""The project's own files (lock, variant files, records) are written whole, keep their mode,
and are never edited by two runs at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from builder.model import files
from builder.model.errors import FactoryError
from builder.stages import lock
from tests.conftest import PROJECT_DIR


def test_write_together_writes_every_file_and_its_undo_restores_them(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("a: 1\n")
    two.write_text("b: 1\n")
    undo = files.write_together({one: "a: 2\n", two: "b: 2\n"})
    assert (one.read_text(), two.read_text()) == ("a: 2\n", "b: 2\n")
    undo()
    assert (one.read_text(), two.read_text()) == ("a: 1\n", "b: 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.yaml", "two.yaml"]


def test_a_file_that_cant_be_staged_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("a: 1\n")
    with pytest.raises(FileNotFoundError):  # the second file's folder is gone: nothing is renamed
        files.write_together({one: "a: 2\n", tmp_path / "gone" / "two.yaml": "b: 2\n"})
    assert one.read_text() == "a: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.yaml"]


@pytest.mark.parametrize("mode", [0o644, 0o664, 0o600])
def test_a_rewritten_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "images.lock.yaml"
    path.write_text("old\n")
    path.chmod(mode)
    lock.write(path, {"schema": 1, "root": {}, "tools": {}})
    assert stat.S_IMODE(path.stat().st_mode) == mode
    files.write_together({path: "new\n"})
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = files.write_atomically(tmp_path / "record.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_second_run_editing_the_same_file_stops_naming_it(tmp_path: Path) -> None:
    """Another process holds the lock file's edit: this one refuses at once, and the
    holder's own nested edit (bump updating the lock) is not refused."""
    path = tmp_path / "images.lock.yaml"
    path.write_text("x\n")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from builder.model import files\n"
         f"with files.editing(Path({str(path)!r})):\n"
         "    print('held', flush=True); time.sleep(30)"],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FactoryError, match=f"another run is editing {path}: wait for it to finish"), \
                files.editing(path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with files.editing(path), files.editing(path):  # nested in one run: taken once
        pass
