"""docs/team-variants.md, command by command: a team variant from fork to published."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from builder.engine import oci
from builder.engine.registry import EmbeddedRegistry
from tests.conftest import PROJECT_DIR

TUTORIAL = PROJECT_DIR / "docs" / "team-variants.md"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL)


def test_the_tutorial_publishes_a_team_image(e2e_registry: EmbeddedRegistry, tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    shutil.copytree(PROJECT_DIR, fork, ignore=shutil.ignore_patterns(".venv", ".git", ".tools", "*_cache", "out"))
    env = {
        **os.environ,
        # the fork as `make setup` leaves it: the virtualenv, and the pinned Dev Containers CLI a
        # release publishes the agents Feature with
        "PATH": f"{PROJECT_DIR / '.venv' / 'bin'}:{PROJECT_DIR / '.tools' / 'node_modules' / '.bin'}:"
                f"{os.environ['PATH']}",
        "HJK_PROJECT_DIR": str(fork),
        "HJK_REGISTRY": e2e_registry.address,
    }
    blocks = shell_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 4
    outputs = []
    for block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=fork, env=env,
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"tutorial step failed:\n{block}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout + proc.stderr)
    repository = f"{e2e_registry.address}/acme/headjack"
    for name, output in (("acme-data", outputs[3]), ("acme-dev", outputs[4])):
        index = oci.inspect(f"{repository}:{name}")
        assert set(index.platforms) == {"linux/amd64", "linux/arm64"}
        assert f"{repository}:{name}@{index.digest}" in output
        # the team image alone was tested (base's checks and its own), on both platforms;
        # base was taken from the registry as published
        assert "== test: 2 images passed" in output
        assert "== parents: base found in the registry, not rebuilt" in output
        assert "== signed parents: base signed" in output
