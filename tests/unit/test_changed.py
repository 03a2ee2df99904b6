"""--changed-since: which variants a change touches, judged by their rendered build contexts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from builder.model.graph import ROOT, Job, identity
from tests.conftest import PROJECT_DIR, hjk


def project_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_DIR, repo, ignore=shutil.ignore_patterns(".venv", ".git", ".tools", "*_cache", "out"))
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"]):
        subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True)
    return repo


def changed(repo: Path) -> str:
    proc = hjk("plan", "--offline", "--changed-since", "HEAD", env={"HJK_PROJECT_DIR": str(repo)})
    return next(line for line in proc.stderr.splitlines() if line.startswith("changed since HEAD:"))


def test_nothing_changed(tmp_path: Path) -> None:
    assert changed(project_repo(tmp_path)) == "changed since HEAD: nothing"


def test_a_leaf_template_change_selects_the_leaf_only(tmp_path: Path) -> None:
    repo = project_repo(tmp_path)
    template = repo / "dockerfiles" / "dind.Dockerfile.j2"
    template.write_text(template.read_text().replace("VOLUME /var/lib/docker", "VOLUME /var/lib/docker\n# edited"))
    assert changed(repo) == "changed since HEAD: dind"


def test_a_shared_partial_or_parent_change_selects_the_children_too(tmp_path: Path) -> None:
    repo = project_repo(tmp_path)
    base = repo / "variants" / "base.yaml"
    base.write_text(base.read_text().replace("  - less\n", "  - less\n  - file\n"))
    assert changed(repo) == "changed since HEAD: base, systemd, dind"


def test_leaving_an_optional_tool_out_is_another_build() -> None:
    job = Job(variant="base", platform="linux/amd64", parent=ROOT, content_hash="c" * 64, level=0)
    complete = identity(job, "sha256:root", {})
    assert identity(job, "sha256:root", {}, ("goenv",)) != complete
    assert identity(job, "sha256:root", {}, ()) == complete
