"""Headjack can start our init variants: the real systemd and dind variant files and
templates, built on a small fixture parent (amd64), started exactly as Headjack's
Docker runtime starts them. Removing a flags label from systemd turns this red."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from dataclasses import dataclass

import pytest

from builder.model.records import BuildRecord, load
from tests.conftest import PROJECT_DIR, RUN_ID, TEST_LABEL
from tests.docker.conftest import FixtureBuild, fixture_cli
from tests.docker.test_build import fork_of_fixtures
from tests.headjack_start import commit_in_workspace, docker, started_like_headjack, wait_for

# The fixture parent stands in for base: the user, git and ps that systemd and dind rely on.
AGENT_PARENT = """name: agentbase
description: tiny plus what the systemd and dind templates expect of base
parent: tiny
template: variant.Dockerfile.j2
packages: [git, procps]
fragments:
  root: [fragments/agentbase.j2]
"""
AGENT_FRAGMENT = """RUN userdel -r "$(getent passwd 1000 | cut -d: -f1)" 2>/dev/null || true \\
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash developer \\
 && install -d -o developer -g developer /workspace
"""


@dataclass(frozen=True)
class InitImages:
    references: dict[str, str]
    """variant -> repository@digest of its amd64 image."""


@pytest.fixture(scope="module")
def init_images(fixture_build: FixtureBuild, tmp_path_factory: pytest.TempPathFactory) -> InitImages:
    tmp = tmp_path_factory.mktemp("headjack")
    overlay = fork_of_fixtures(tmp)
    variants = tmp / "variants"
    (variants / "agentbase.yaml").write_text(AGENT_PARENT)
    (variants / "fragments" / "agentbase.j2").write_text(AGENT_FRAGMENT)
    for name in ("systemd", "dind"):  # the project's own files, untouched but for systemd's parent
        text = (PROJECT_DIR / "variants" / f"{name}.yaml").read_text()
        if name == "systemd":
            text = re.sub(r"(?m)^parent: base$", "parent: agentbase", text)
        (variants / f"{name}.yaml").write_text(text)
    record = tmp / "record.json"
    fixture_cli(fixture_build.registry, "build", "--variant", "agentbase", "--variant", "systemd",
                "--variant", "dind", "--platform", "linux/amd64", "--record", str(record), config=overlay)
    built = load(record, BuildRecord)
    return InitImages({b.variant: f"{built.repository}@{b.digest}" for b in built.builds})


@pytest.mark.parametrize("variant", ["systemd", "dind"])
def test_headjack_starts_the_init_variant(init_images: InitImages, variant: str) -> None:
    image = init_images.references[variant]
    with started_like_headjack(image, "linux/amd64") as started:
        labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout)
        assert labels.get("io.headjack.init") == "/lib/systemd/systemd"
        assert "io.headjack.docker.flags" in labels, "no docker flags label: Headjack starts it with none"
        state = wait_for(started, "systemctl", "is-system-running", accept=("running",), timeout=180)
        assert state == "running", f"systemd says {state}: {started.logs()}"
        assert started.exec("ps", "-o", "comm=", "-p", "1").stdout.strip() == "systemd"
        assert started.exec("id", "-un").stdout.strip() == "root"  # no -u: the image's USER
        assert commit_in_workspace(started) == 0
        if variant == "dind":
            wait_for(started, "docker", "info", timeout=180)
            assert "docker" in started.exec("id", "-nG", "developer").stdout.split()
        assert started.running(), "the container did not stay up"
        if started.run.substituted:  # this host refuses --privileged: said, never silent
            print(f"{variant}: {started.run.substituted}")
            assert "privileged=true" not in " ".join(started.argv)


def test_removing_the_docker_flags_leaves_headjack_a_dying_container(init_images: InitImages) -> None:
    """The same systemd image without its docker flags label: what Headjack did before."""
    from builder.model import headjack

    image = init_images.references["systemd"]
    run = headjack.plan_run({"io.headjack.init": "/lib/systemd/systemd"})
    assert run.flags == {}
    name = f"hjk-conformance-noflags-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="hjk-worktree-") as worktree:
        try:
            docker(*run.run_argv(name, image, worktree, extra=["--label", f"{TEST_LABEL}={RUN_ID}"]))
            state = wait_for_exit(name)
            assert state != "running", "systemd ran without Headjack's flags: the label would not be needed"
        finally:
            docker("rm", "-f", "-v", name, check=False)


def wait_for_exit(name: str, timeout: int = 60) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Status}}", name, check=False).stdout.strip()
        if status == "exited":
            return status
        time.sleep(1)
    return docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
