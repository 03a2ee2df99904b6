"""A run stops cleanly on SIGINT and SIGTERM, however its parent started it."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

_CHILD = """
import os, signal, subprocess, sys
from builder.engine import commands as tools
tools.handle_stop_signals()
# a child of ours must get the default disposition back, not an inherited SIG_IGN
grandchild = subprocess.run([sys.executable, "-c",
    "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"],
    capture_output=True, text=True).stdout.strip()
print("grandchild ignores SIGINT:", grandchild, flush=True)
try:
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    signal.pause()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_stop_signals_interrupt_even_when_started_with_sigint_ignored(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, name], capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["grandchild ignores SIGINT: False", "interrupted"]


def test_stopping_builds_leaves_daemons_of_our_own_alone(tmp_path: object) -> None:
    """An embedded registry started by the same run (its own session) outlives a stopped build."""
    import os
    from pathlib import Path

    from builder.engine import commands as tools

    daemon = tools.spawn(["sleep", "300"], Path(str(tmp_path)) / "daemon.log")
    build = subprocess.Popen(["sleep", "300"])
    try:
        assert build.pid in tools.stop_children(signal.SIGTERM)
        assert build.wait(timeout=30) == -signal.SIGTERM
        os.kill(daemon, 0)  # still there
    finally:
        os.kill(daemon, signal.SIGKILL)
        os.waitpid(daemon, 0)
        if build.poll() is None:
            build.kill()


def test_a_timed_out_command_ends_with_everything_it_started() -> None:
    """Its own process group: the timeout takes the command's children too."""
    import time

    from builder.engine import commands

    marker = f"hjk-orphan-{time.monotonic_ns()}"
    with pytest.raises(commands.CommandError, match="timed out after 1"):
        commands.run(["bash", "-c", f"(exec -a {marker} sleep 300) & exec -a {marker} sleep 300"], timeout=1)
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == [], "the command's children outlived its timeout"
