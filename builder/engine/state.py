"""Where the factory keeps state between runs: registry data, caches, logs, records."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.model.errors import FactoryError

STATE_ENV = "HJK_STATE_DIR"


def state_dir() -> Path:
    """HJK_STATE_DIR, else $XDG_STATE_HOME/headjack-images (~/.local/state/...)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        path = Path(explicit)
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(xdg) / "headjack-images"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        source = f"{STATE_ENV}={explicit}" if explicit else str(path)
        raise FactoryError(f"the state folder {source} can't be used: {exc.strerror or exc}"
                           " (name a folder you can write to)") from None
    return path


def subdir(*parts: str) -> Path:
    path = state_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def exclusive(name: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the state folder's mutex NAME so two runs never interleave ("lock" is the
    project's images.lock.yaml; this is a flock on a file under the state folder)."""
    mutex = subdir("running") / f"{name}.mutex"
    with open(mutex, "w") as handle:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            raise FactoryError(
                f"another run holds {mutex}: wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
