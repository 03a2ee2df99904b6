"""Start an image exactly as Headjack's Docker runtime does, for the conformance tests.

`docker run --detach --name NAME <flags from io.headjack.docker.flags> -v WT:/workspace
IMAGE <io.headjack.init>` and plain `docker exec NAME CMD` (no -u): the argv comes
from `builder.headjack`, the same function the smoke stage uses. The only additions
are --platform (Headjack runs native images) and a label for clean-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.model import headjack
from builder.stages import smoke
from tests.conftest import RUN_ID, TEST_LABEL


def exec_argv(name: str, command: Sequence[str], workdir: str | None = None) -> list[str]:
    """How Headjack runs a command in its container: `<runtime> exec [-w DIR] NAME CMD`, with
    no `-u`, so the command runs as the image's USER."""
    return ["exec", *(["-w", workdir] if workdir else []), name, *command]


def docker(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return proc


@dataclass
class Started:
    name: str
    run: headjack.HeadjackRun
    argv: list[str]
    workspace: Path

    def exec(self, *command: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return docker(*exec_argv(self.name, list(command)), timeout=timeout, check=False)

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.name, check=False).stdout.strip() == "true"

    def logs(self) -> str:
        proc = docker("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-3000:]


@contextmanager
def started_like_headjack(image: str, platform: str) -> Iterator[Started]:
    docker("pull", "--quiet", "--platform", platform, image, timeout=900)
    labels = json.loads(docker("image", "inspect", image).stdout)[0]["Config"].get("Labels") or {}
    refused = headjack.wants_privileged(labels) and not smoke.privileged_allowed(image)
    run = headjack.plan_run(labels, "docker", privileged_refused=refused)
    workspace = Path(tempfile.mkdtemp(prefix="hjk-worktree-"))
    # the user's worktree: a git repository owned by the host user
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(workspace)], check=True)
    name = f"hjk-conformance-{uuid.uuid4().hex[:10]}"
    argv = ["docker", *run.run_argv(name, image, str(workspace),
                                    extra=["--platform", platform, "--label", f"{TEST_LABEL}={RUN_ID}"])]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"`{' '.join(argv)}` failed: {proc.stderr}"
        yield Started(name, run, argv, workspace)
    finally:
        docker("rm", "-f", "-v", name, check=False)
        subprocess.run(["rm", "-rf", str(workspace)], check=False)


def wait_for(started: Started, *command: str, accept: tuple[str, ...] = (), timeout: int = 300) -> str:
    """Run COMMAND until it succeeds (or prints one of ACCEPT); fail if the container dies."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert started.running(), f"the container died: {started.logs()}"
        proc = started.exec(*command, timeout=60)
        last = (proc.stdout + proc.stderr).strip()
        if proc.returncode == 0 or (accept and last in accept):
            return last
        time.sleep(2)
    raise AssertionError(f"`{' '.join(command)}` never succeeded within {timeout} s: {last}")


def commit_in_workspace(started: Started) -> int:
    """An agent's commit in the mounted worktree; returns the host uid owning the new file."""
    proc = started.exec("sh", "-c", "echo hello > note.txt && git add note.txt && "
                        "git -c user.name=A -c user.email=a@headjack.invalid commit -qm first && git log --oneline")
    assert proc.returncode == 0, f"git commit in /workspace failed: {proc.stdout}{proc.stderr}"
    return os.stat(started.workspace / "note.txt").st_uid
