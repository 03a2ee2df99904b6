"""Lint the rendered Dockerfiles (hadolint), the variant files (yamllint), the
helper scripts the images run (shellcheck) and the workflows' commands."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from builder import tools
from builder.config import Settings
from builder.render import RenderedVariant
from builder.workflows import check_workflow, makefile_targets


@dataclass(frozen=True)
class Finding:
    tool: str
    target: str
    output: str


def _venv_tool(name: str) -> str:
    """Linters installed in the same virtualenv as this package come first."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def lint(
    settings: Settings, rendered: dict[str, RenderedVariant], variant_files: list[Path], cli: click.Group,
) -> list[Finding]:
    """hadolint, yamllint, shellcheck, and the workflows' commands judged by CLI's own parser."""
    findings: list[Finding] = []
    hadolint = _venv_tool("hadolint")
    tools.require(hadolint, "install the test extras (`make setup`)")
    config = settings.project_dir / ".hadolint.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        for name, result in rendered.items():
            dockerfile = result.write(Path(tmp) / name)
            proc = tools.run([hadolint, "--no-color", "--config", str(config), str(dockerfile)], check=False)
            if proc.returncode != 0:
                findings.append(Finding("hadolint", f"rendered {name}/Dockerfile",
                                        (proc.stdout + proc.stderr).replace(str(dockerfile), "Dockerfile")))
    yamllint = _venv_tool("yamllint")
    tools.require(yamllint, "install yamllint (`make setup`)")
    proc = tools.run(
        [yamllint, "-f", "parsable", "-c", str(settings.project_dir / ".yamllint.yaml"),
         *map(str, variant_files)], check=False,
    )
    if proc.returncode != 0:
        findings.append(Finding("yamllint", "variant files", proc.stdout + proc.stderr))
    scripts = [p for p in sorted((settings.templates_dir / "files").rglob("*"))
               if p.is_file() and p.read_bytes().startswith(b"#!")]
    if scripts:
        shellcheck = tools.require("shellcheck", "install shellcheck (`make setup`)")
        proc = tools.run([shellcheck, "--format", "gcc", *map(str, scripts)], check=False)
        if proc.returncode != 0:
            findings.append(Finding("shellcheck", "helper scripts in dockerfiles/files", proc.stdout + proc.stderr))
    targets = makefile_targets(settings.project_dir / "Makefile")
    for workflow in sorted((settings.project_dir / ".github" / "workflows").glob("*.yml")):
        problems = check_workflow(workflow, cli, targets)
        if problems:
            findings.append(Finding("workflow commands", workflow.name, "\n".join(map(str, problems))))
    return findings
