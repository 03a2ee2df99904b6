"""Fixture images started by the real Dev Containers CLI (@devcontainers/cli, the lock's pin),
as a host user whose uid is 1002, on both platforms: a devcontainer.json naming only the
image, `devcontainer up`, `devcontainer exec`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from builder.model.records import BuildRecord, TestResults, load
from tests.conftest import FIXTURE_CONFIG, HOST_UID, hjk
from tests.devcontainer_start import started_with_devcontainer
from tests.docker.conftest import FixtureBuild, fixture_cli, namespaced
from tests.docker.test_smoke import containers_labelled

PLATFORMS = ["linux/amd64", "linux/arm64"]


def image_of(record: BuildRecord, variant: str, platform: str) -> str:
    build = next(b for b in record.builds_of(variant) if b.platform == platform)
    return f"{record.repository}@{build.digest}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_new_user_of_the_cli_gets_their_uid_their_workspace_and_the_init(
    fixture_build: FixtureBuild, host_user: str, platform: str,
) -> None:
    record = fixture_build.record
    # tiny has no init: the CLI's own keep-alive shell runs; commands run as developer, remapped
    with started_with_devcontainer(image_of(record, "tiny", platform), platform, host_user) as dev:
        assert dev.up["remoteUser"] == "developer"
        assert dev.sh("id -un; id -u; id -g").splitlines() == ["developer", str(HOST_UID), str(HOST_UID)]
        assert dev.sh("echo one > made.txt && echo two >> made.txt && cat made.txt").splitlines() == ["one", "two"]
        assert os.stat(dev.workspace / "made.txt").st_uid == HOST_UID
        assert dev.sh("uname -m") == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[platform]
    # initd is an init image asking for --privileged: its init stays PID 1, and git works
    with started_with_devcontainer(image_of(record, "initd", platform), platform, host_user) as dev:
        assert dev.sh("cat /proc/1/comm") == "fixture-init"
        assert dev.sh("id -un") == "developer"
        git = "git -c user.name=Dev -c user.email=dev@headjack.invalid"
        dev.sh(f"git init -q . && echo a > notes.txt && git add notes.txt && {git} commit -qm first "
               f"&& echo b >> notes.txt && {git} commit -qam second")
        log = subprocess.run(["runuser", "-u", host_user, "--", "git", "-C", str(dev.workspace), "log", "--oneline"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert len(log) == 2, log
        assert {os.stat(p).st_uid for p in (dev.workspace / "notes.txt", dev.workspace / ".git")} == {HOST_UID}
        # the one deviation, and only where this host refuses --privileged
        if dev.docker_path:
            assert dev.deviation and "cap-add=SYS_ADMIN" in dev.deviation


def test_the_smoke_stage_starts_each_image_with_the_cli_too(
    fixture_build: FixtureBuild, host_user: str, tmp_path: Path,
) -> None:
    results_path = tmp_path / "results.json"
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--record", str(fixture_build.record_path),
               "--variant", "tiny", "--variant", "initd", "--client", "devcontainer",
               "--host-user", host_user, "--results", str(results_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = load(results_path, TestResults)
    assert {(i.variant, i.platform, i.client) for i in results.images} == {
        (v, p, "devcontainer") for v in ("tiny", "initd") for p in PLATFORMS}
    for image in (i for i in results.images if i.client == "devcontainer"):
        checks = {c.name: c for c in image.checks}
        assert checks["devcontainer: commands run as the remote user"].detail.startswith("commands run as developer")
        workspace = checks["devcontainer: the workspace is the host user's"]
        assert f"belongs to {host_user} ({HOST_UID})" in workspace.detail
        if image.variant == "initd":
            assert "committed" in workspace.detail
            pid1 = checks["devcontainer: PID 1 is the image's ENTRYPOINT"]
            assert pid1.detail == "PID 1: fixture-init (the ENTRYPOINT /usr/local/bin/fixture-init)"
            assert image.deviation is None or "--docker-path" in image.deviation
        else:
            assert image.deviation is None and "devcontainer: PID 1 is the image's ENTRYPOINT" not in checks
        assert all(c.status == "passed" for c in image.checks), image.checks
    assert "tiny linux/arm64 (devcontainer): passed" in proc.stdout + proc.stderr
    assert containers_labelled(f"io.headjack.images.smoke-run={results.run_id}") == []


def test_a_numeric_remote_user_is_caught_by_the_workspace_check(
    fixture_build: FixtureBuild, host_user: str, tmp_path: Path,
) -> None:
    """The check can fail: with the user given as a number the CLI remaps nothing, and the
    host user's workspace is not writable (what base did before it named its user)."""
    overlay = namespaced(tmp_path, "numeric")
    tiny = tmp_path / "numeric" / "variants" / "tiny.yaml"
    tiny.write_text(tiny.read_text().replace("remoteUser: developer", 'remoteUser: "1000"'))
    record = tmp_path / "record.json"
    fixture_cli(fixture_build.registry, "build", "--variant", "tiny", "--platform", "linux/amd64",
                "--record", str(record), config=overlay)
    results_path = tmp_path / "results.json"
    proc = hjk("--config", str(overlay), "test", "--record", str(record), "--client", "devcontainer",
               "--host-user", host_user, "--results", str(results_path), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (image,) = load(results_path, TestResults).images
    failed = [c for c in image.checks if c.status == "failed"]
    assert [c.name for c in failed] == ["devcontainer: the workspace is the host user's"]
    assert "creating, editing or committing a file in the workspace failed" in failed[0].detail


def test_as_root_the_cli_client_wants_a_host_user(fixture_build: FixtureBuild) -> None:
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--record", str(fixture_build.record_path),
               "--variant", "tiny", "--client", "devcontainer", check=False)
    assert proc.returncode == 1
    assert "pass --host-user NAME" in proc.stderr and "Traceback" not in proc.stderr
