"""Start an image the way a new user of the Dev Containers CLI does, for the client tests:
a project folder the host user owns, `.devcontainer/devcontainer.json` = {"image": REF},
`devcontainer up` and `devcontainer exec` run as that host user, nothing else.

The one addition is the smoke stage's own deviation: where this host refuses
--privileged and the image asks for it, the CLI gets a `--docker-path` program that
swaps it for the image's stand-in flags (and the test is told so).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.engine import devcontainer as engine_cli
from builder.model import devcontainer, headjack
from builder.stages import smoke
from tests.conftest import RUN_ID, TEST_LABEL, devcontainer_cli


@dataclass
class DevStarted:
    workspace: Path
    host_user: str
    labels: tuple[str, ...]
    docker_path: Path | None
    tmpdir: Path
    up: dict[str, object]
    deviation: str | None

    def exec(self, *command: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        argv = ["runuser", "-u", self.host_user, "--", *engine_cli.with_tmpdir(self.tmpdir, [devcontainer_cli()]),
                "exec", "--workspace-folder", str(self.workspace)]
        for label in self.labels:
            argv += ["--id-label", label]
        if self.docker_path:
            argv += ["--docker-path", str(self.docker_path)]
        return subprocess.run([*argv, *command], capture_output=True, text=True, timeout=timeout, check=False)

    def sh(self, script: str, timeout: int = 600) -> str:
        proc = self.exec("sh", "-c", script, timeout=timeout)
        assert proc.returncode == 0, f"`{script}` failed ({proc.returncode}): {proc.stdout}{proc.stderr[-1500:]}"
        return proc.stdout.strip()


@contextmanager
def started_with_devcontainer(image: str, platform: str, host_user: str) -> Iterator[DevStarted]:
    subprocess.run(["docker", "pull", "--quiet", "--platform", platform, image], capture_output=True, check=True,
                   timeout=900)
    labels = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                       check=True).stdout)[0]["Config"].get("Labels") or {}
    wanted = devcontainer.merged(devcontainer.parse_label(labels.get(devcontainer.LABEL, "[]")))
    folder = Path(tempfile.mkdtemp(prefix="hjk-dev-"))
    folder.chmod(0o755)
    workspace = folder / "project"
    workspace.mkdir()
    engine_cli.write_workspace(workspace, image, host_user)
    docker_path, deviation = None, None
    if wanted.get("privileged") and not smoke.privileged_allowed(image):
        stand_in = headjack.to_args(headjack.parse_flags(labels[headjack.UNPRIVILEGED_LABEL]))
        docker_path = engine_cli.privileged_stand_in(folder, stand_in)
        deviation = f"--privileged replaced by {' '.join(stand_in)} (host refuses it)"
    case = f"io.headjack.images.test-case={uuid.uuid4().hex[:10]}"
    ids = (f"{TEST_LABEL}={RUN_ID}", case)
    tmpdir = engine_cli.private_tmp(folder, host_user)
    argv = ["runuser", "-u", host_user, "--", *engine_cli.with_tmpdir(tmpdir, [devcontainer_cli()]),
            "up", "--workspace-folder", str(workspace),
            "--id-label", ids[0], "--id-label", ids[1], *(["--docker-path", str(docker_path)] if docker_path else [])]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1500, check=False)
        outcome = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
        assert proc.returncode == 0 and outcome.get("outcome") == "success", \
            f"devcontainer up failed: {proc.stdout[-1500:]}{proc.stderr[-3000:]}"
        yield DevStarted(workspace, host_user, ids, docker_path, tmpdir, outcome, deviation)
    finally:
        engine_cli.remove(case)
        shutil.rmtree(folder, ignore_errors=True)
