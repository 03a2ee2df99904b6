"""The released variants under the clients users have, on both platforms: the Dev Containers
CLI (VS Code, Codespaces, DevPod, Headjack's devcontainer mode), Headjack's later `--image`
mode (`IMAGE sleep infinity` with its runtime flags) and a plain `docker run IMAGE`.

Each client starts each image once and everything is checked in that one container.
Headjack's label rules are tests/e2e/test_headjack_conformance.py.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from builder.model import headjack
from builder.model.records import TestResults, load, save
from builder.stages import smoke
from tests.conftest import HOST_UID, RUN_ID, TEST_LABEL, hjk
from tests.e2e.conftest import Release
from tests.headjack_start import docker

EMULATED = "linux/arm64"
PLATFORMS = ["linux/amd64", "linux/arm64"]


@pytest.fixture(scope="module")
def devcontainer_results(released: Release, host_user: str, tmp_path_factory: pytest.TempPathFactory) -> TestResults:
    """Every released image started by the real Dev Containers CLI through the smoke stage (the
    release gate's own `--client devcontainer`), as a host user with uid 1002."""
    folder = tmp_path_factory.mktemp("clients")
    record = save(released.build, folder / "build.json")
    results = folder / "results.json"
    proc = hjk("test", "--record", str(record), "--client", "devcontainer", "--host-user", host_user,
               "--results", str(results), check=False)
    print(proc.stdout)  # the figures of the closing note come from this table
    assert results.is_file(), proc.stderr
    return load(results, TestResults)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("variant", ["base", "systemd", "dind"])
def test_the_dev_containers_cli_starts_every_variant_right(
    devcontainer_results: TestResults, variant: str, platform: str,
) -> None:
    (image,) = [i for i in devcontainer_results.images if i.variant == variant and i.platform == platform]
    assert image.client == "devcontainer" and image.error is None, image.error
    checks = {c.name: c for c in image.checks}
    failed = {n: c.detail for n, c in checks.items() if c.status == "failed"}
    assert not failed, failed
    assert checks["devcontainer: commands run as the remote user"].detail.startswith("commands run as developer")
    workspace = checks["devcontainer: the workspace is the host user's"].detail
    assert workspace.startswith("created, edited and committed") and f"({HOST_UID})" in workspace
    for agent in ("claude", "gemini", "codex"):
        assert checks[f"devcontainer: tool {agent}: {agent} --version"].status == "passed"
    if variant == "base":
        assert "devcontainer: PID 1 is the image's ENTRYPOINT" not in checks
        assert image.deviation is None
        return
    assert checks["devcontainer: PID 1 is the image's ENTRYPOINT"].detail.startswith("PID 1: systemd ")
    running = checks["devcontainer: systemd is running"]
    engine = checks.get("devcontainer: the inner engine runs a container for the remote user")
    if platform == EMULATED:  # never passed where emulation can't judge it
        assert running.status == "omitted" and "emulation" in running.detail
        assert engine is None or engine.status == "omitted"
    else:
        assert running.status == "passed"
        if variant == "dind":
            assert engine is not None and engine.status == "passed" and "inner-ok" in engine.detail
    if not smoke.privileged_allowed(image.reference):
        assert image.deviation and "--docker-path" in image.deviation


def start_init_image(image: str, platform: str, command: list[str]) -> str:
    """`docker run` with the image's docker flags (as Headjack's --image mode passes them after
    `--`, or by hand), COMMAND appended; returns the container's name."""
    labels = smoke.ImageFacts.of(image, platform).labels
    run = smoke.headjack_run(labels, image)
    name = f"hjk-client-{uuid.uuid4().hex[:10]}"
    workspace = Path(tempfile.mkdtemp(prefix="hjk-worktree-"))
    docker("run", "--detach", "--name", name, "--platform", platform, "--label", f"{TEST_LABEL}={RUN_ID}",
           *headjack.to_args(run.flags), "-v", f"{workspace}:/workspace", image, *command)
    return name


def wait_for_systemd(name: str) -> str:
    state = ""
    for _ in range(150):
        state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state == "running":
            return state
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true", \
            docker("logs", name, check=False).stderr[-2000:]
        subprocess.run(["sleep", "2"], check=True)
    raise AssertionError(f"systemd never came up: {state}")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("command", [["sleep", "infinity"], []], ids=["sleep-infinity", "no-command"])
@pytest.mark.parametrize("variant", ["systemd", "dind"])
def test_an_init_image_boots_whatever_command_follows(
    released: Release, variant: str, command: list[str], platform: str,
) -> None:
    """Headjack's later `--image` mode appends `sleep infinity`; `docker run IMAGE` appends
    nothing. Either way systemd, the ENTRYPOINT, is PID 1 and comes up."""
    build = next(b for b in released.build.builds_of(variant) if b.platform == platform)
    name = start_init_image(f"{released.build.repository}@{build.digest}", platform, command)
    try:
        assert docker("exec", name, "cat", "/proc/1/comm").stdout.strip() == "systemd"
        if platform == EMULATED:  # systemd's own state can't be judged under QEMU: PID 1 is the proof here
            return
        assert wait_for_systemd(name) == "running"
        if variant == "dind":
            for _ in range(90):
                if docker("exec", "-u", "developer", name, "docker", "info", check=False).returncode == 0:
                    break
                subprocess.run(["sleep", "2"], check=True)
            assert docker("exec", "-u", "developer", name, "docker", "info", check=False).returncode == 0
    finally:
        docker("rm", "-f", "-v", name, check=False)
