"""The project holds itself to its linters: ruff, mypy --strict, hadolint, yamllint, workflow commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_DIR, hjk

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    proc = subprocess.run([str(BIN / "ruff"), "check", "builder", "tests", "variants/checks"],
                          cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([str(BIN / "mypy")], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_rendered_dockerfiles_and_variant_files_lint_clean() -> None:
    proc = hjk("lint")
    assert "lint clean: 3 Dockerfiles, 3 variant files" in proc.stderr


def test_hadolint_findings_fail_lint(tmp_path: Path) -> None:
    variants = tmp_path / "variants"
    variants.mkdir()
    fragment = variants / "bad.j2"
    fragment.write_text("RUN cd /tmp && echo hi\n")  # DL3003: use WORKDIR
    (variants / "bad.yaml").write_text(
        "name: bad\nparent: root\ntemplate: variant.Dockerfile.j2\nfragments:\n  root: [bad.j2]\n"
    )
    overlay = tmp_path / "o.yaml"
    overlay.write_text("variants_dir: variants\n")
    proc = hjk("--config", str(overlay), "lint", check=False)
    assert proc.returncode == 1
    assert "DL3003" in proc.stderr and "rendered bad/Dockerfile" in proc.stderr


def test_shellcheck_findings_in_helper_scripts_fail_lint(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in ("dockerfiles", "variants", ".github"):
        shutil.copytree(PROJECT_DIR / name, project / name)
    for name in ("factory.yaml", "Makefile", ".hadolint.yaml", ".yamllint.yaml"):
        shutil.copy(PROJECT_DIR / name, project / name)
    script = project / "dockerfiles" / "files" / "common" / "careless"
    script.write_text("#!/bin/sh\nrm -rf $1/cache\n")  # SC2086: unquoted expansion
    proc = hjk("lint", env={"HJK_PROJECT_DIR": str(project)}, check=False)
    assert proc.returncode == 1
    assert "shellcheck" in proc.stderr and "careless" in proc.stderr and "SC2086" in proc.stderr
