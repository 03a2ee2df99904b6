"""Writing the project's own files (the lock, variant files, records): whole or not at all,
keeping the file's mode, and never by two runs at once."""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.model.errors import FactoryError


def _mode_for(path: Path) -> int:
    """The file's own mode, or what a new file gets under the umask (mkstemp's 0600 would
    otherwise hide a committed file from its group)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _stage(path: Path, text: str) -> str:
    """TEXT in a temporary file beside PATH, with PATH's mode: ready to rename into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, _mode_for(path))
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_atomically(path: Path, text: str) -> Path:
    """A crash mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(_stage(path, text), path)
    return path


def write_together(texts: dict[Path, str]) -> Callable[[], None]:
    """Write every file or none: all are staged before the first is renamed into place.
    Returns an undo that puts the previous texts back (for a later step that fails)."""
    old = {path: path.read_text(encoding="utf-8") for path in texts if path.exists()}
    staged: dict[Path, str] = {}
    try:
        for path, text in texts.items():
            staged[path] = _stage(path, text)
    except BaseException:
        for tmp in staged.values():
            os.unlink(tmp)
        raise
    for path, tmp in staged.items():
        os.replace(tmp, path)

    def undo() -> None:
        for path in texts:
            if path in old:
                write_atomically(path, old[path])
            else:
                path.unlink(missing_ok=True)
    return undo


@contextmanager
def editing(path: Path) -> Iterator[None]:
    """Hold PATH for one run that reads and rewrites it (and the files written with it): a
    second run at once stops, naming it, instead of interleaving its edits."""
    guard = path.resolve().with_name(f".{path.name}.editing")
    if guard in _held:  # this run holds it already (a bump updating the lock)
        yield
        return
    with open(guard, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FactoryError(f"another run is editing {path}: wait for it to finish") from None
        _held.add(guard)
        try:
            yield
        finally:
            _held.discard(guard)
            fcntl.flock(handle, fcntl.LOCK_UN)


_held: set[Path] = set()
