"""docs/team-variants.md, command by command: a team variant from fork to published."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from builder.engine import oci
from builder.engine.registry import EmbeddedRegistry
from builder.engine.state import STATE_ENV
from builder.model.records import ReleaseRecord, TestResults, load
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
    releases: list[ReleaseRecord | None] = []
    tests: list[TestResults | None] = []
    kept = Path(os.environ[STATE_ENV]) / "records"
    for block in blocks:
        for name in ("release.json", "test.json"):
            (kept / name).unlink(missing_ok=True)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=fork, env=env,
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"tutorial step failed:\n{block}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout + proc.stderr)
        # what the step's release left for machines (None: the step released nothing)
        releases.append(load(kept / "release.json", ReleaseRecord) if (kept / "release.json").exists() else None)
        tests.append(load(kept / "test.json", TestResults) if (kept / "test.json").exists() else None)
    repository = f"{e2e_registry.address}/acme/headjack"
    for step, name in ((3, "acme-data"), (4, "acme-dev")):
        index = oci.inspect(f"{repository}:{name}")
        assert set(index.platforms) == {"linux/amd64", "linux/arm64"}
        assert f"{repository}:{name}@{index.digest}" in outputs[step]  # the reference to copy, printed
        released, tested = releases[step], tests[step]
        assert released is not None and tested is not None, f"step {step} wrote no release or test record"
        assert [(v.variant, v.index_digest) for v in released.variants] == [(name, index.digest)]
        # the team image alone was tested (base's checks and its own), on both platforms;
        # base was taken from the registry as published, and its signature checked
        assert {(i.variant, i.platform) for i in tested.images if i.passed} == {
            (name, "linux/amd64"), (name, "linux/arm64")} and tested.passed
        assert released.parents and all(p.startswith(f"{repository}@sha256:") for p in released.parents)
        assert released.stage("signed parents").endswith(" signed")
