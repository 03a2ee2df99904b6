"""The embedded registry and the root image made without a pull."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from builder.engine import oci
from builder.engine.registry import EmbeddedRegistry, answers_v2
from tests.conftest import FIXTURE_CONFIG, free_port, hjk


def test_registry_up_status_down_for_real(tmp_path: Path) -> None:
    port = str(free_port())
    env = {"HJK_STATE_DIR": str(tmp_path)}
    up = hjk("registry", "up", "--port", port, env=env)
    assert f"started at localhost:{port}" in up.stderr
    try:
        assert answers_v2(f"localhost:{port}")
        again = hjk("registry", "up", "--port", port, env=env)
        assert "already running" in again.stderr
        status = json.loads(hjk("registry", "status", "--port", port, "--json", env=env).stdout)
        assert status["running"] is True and status["address"] == f"localhost:{port}"
        assert Path(status["data_dir"]).is_relative_to(tmp_path)
    finally:
        down = hjk("registry", "down", "--port", port, env=env)
    assert "stopped" in down.stderr
    assert not answers_v2(f"localhost:{port}")
    stopped = hjk("registry", "status", "--port", port, env=env, check=False)
    assert stopped.returncode == 3 and "stopped" in stopped.stdout


def test_root_index_holds_both_platforms_and_runs_arm64(
    test_registry: EmbeddedRegistry, root_in_registry: str,
) -> None:
    info = oci.inspect(root_in_registry)
    assert set(info.platforms) == {"linux/amd64", "linux/arm64"}
    assert root_in_registry.endswith(info.digest)
    arch = subprocess.run(
        ["docker", "run", "--rm", "--label", "io.headjack.images.test-run=root", "--platform", "linux/arm64",
         root_in_registry, "uname", "-m"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert arch == "aarch64"


def test_second_bootstrap_finds_the_roots_in_the_registry(
    test_registry: EmbeddedRegistry, root_in_registry: str,
) -> None:
    proc = hjk("--config", str(FIXTURE_CONFIG), "root", "bootstrap", "--registry", test_registry.address)
    for arch in ("amd64", "arm64"):
        assert f"trixie/{arch}: in the registry" in proc.stderr and "nothing to make" in proc.stderr
    assert proc.stdout.strip() == root_in_registry


def test_pipeline_commands_without_registry_start_the_embedded_one(tmp_path: Path) -> None:
    port = free_port()
    overlay = tmp_path / "org.yaml"
    overlay.write_text(f"embedded_registry:\n  port: {port}\n")
    try:
        plan = json.loads(hjk("--config", str(overlay), "plan", "--json").stdout)
        assert plan["repository"] == f"localhost:{port}/gilmanlab/headjack"
        # `plan` only reads; `root bootstrap` is a pipeline command and starts the registry
        assert not answers_v2(f"localhost:{port}")
        hjk("--config", str(overlay), "root", "bootstrap", "--platform", "linux/amd64")
        assert answers_v2(f"localhost:{port}")
    finally:
        hjk("--config", str(overlay), "registry", "down")
