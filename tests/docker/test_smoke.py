"""The smoke-test stage on fixture images: passes, catches a broken tool, leaves nothing behind."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from builder.model.records import TestResults, load
from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild


def containers_labelled(label: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=True,
    ).stdout.split()


def run_test(
    fixture_build: FixtureBuild, tmp_path: Path, *args: str,
) -> tuple[subprocess.CompletedProcess[str], TestResults]:
    results = tmp_path / "results.json"
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--record", str(fixture_build.record_path),
               "--results", str(results), "--junit", str(tmp_path / "junit.xml"), *args, check=False)
    return proc, load(results, TestResults)


def test_fixture_images_pass_on_both_platforms(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    proc, results = run_test(fixture_build, tmp_path, "--variant", "tiny", "--variant", "leaf")
    assert proc.returncode == 0, proc.stderr
    assert {(i.variant, i.platform) for i in results.images} == {
        ("tiny", "linux/amd64"), ("tiny", "linux/arm64"), ("leaf", "linux/amd64"), ("leaf", "linux/arm64"),
    }
    leaf = next(i for i in results.images if i.variant == "leaf" and i.platform == "linux/arm64")
    names = {c.name for c in leaf.checks}
    # a child runs its parent's checks too
    assert {"release file", "leaf file", "env TINY", "metadata platform"} <= names
    assert all(c.status == "passed" for c in leaf.checks)
    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert len(suites) == 4 and all(s.get("failures") == "0" for s in suites)
    assert containers_labelled(f"io.headjack.images.smoke-run={results.run_id}") == []


def test_a_broken_claude_fails_with_the_check_named(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    proc, results = run_test(fixture_build, tmp_path, "--variant", "broken", "--platform", "linux/amd64")
    assert proc.returncode == 1
    assert "check 'claude answers --version' failed" in proc.stderr
    assert "claude: broken on purpose" in proc.stderr
    (image,) = results.images
    failed = [c.name for c in image.checks if c.status == "failed"]
    assert failed == ["claude answers --version"]
    assert containers_labelled(f"io.headjack.images.smoke-run={results.run_id}") == []


def test_a_missing_image_gets_a_clear_error(fixture_build: FixtureBuild) -> None:
    missing = f"{fixture_build.record.repository}:no-such-tag"
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--image", missing, check=False)
    assert proc.returncode == 1
    assert f"image {missing} can't be inspected" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_index_without_the_asked_platform_is_refused(fixture_build: FixtureBuild) -> None:
    tiny = fixture_build.record.variant("tiny")
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--image", f"{tiny.tag}", "--platform", "linux/arm64",
               "--platform", "linux/amd64", check=False)
    assert proc.returncode == 0, proc.stderr
    single = next(b for b in fixture_build.record.builds_of("tiny") if b.platform == "linux/amd64")
    proc = hjk("--config", str(FIXTURE_CONFIG), "test", "--image",
               f"{fixture_build.record.repository}@{single.digest}", "--platform", "linux/arm64", check=False)
    assert proc.returncode == 1
    assert "has no image for linux/arm64 (it has: linux/amd64)" in proc.stderr


def test_an_image_that_crashes_at_start_fails_with_its_logs(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    proc, results = run_test(fixture_build, tmp_path, "--variant", "crashing", "--platform", "linux/amd64")
    assert proc.returncode == 1
    (image,) = results.images
    assert image.error and "exited (code 2) before it was ready" in image.error
    assert image.logs and "crashing-on-purpose" in image.logs
    assert "crashing-on-purpose" in proc.stderr
    # started by Headjack's rules: the init from io.headjack.init, the flags of its docker label
    assert image.started_as == ["run", "--detach", "--name", "NAME", "--tmpfs=/run", "-v", "WORKTREE:/workspace",
                                image.reference, "/bin/ls", "/crashing-on-purpose"]
    assert image.deviation is None
