"""Lint the rendered Dockerfiles (hadolint), the variant files (yamllint), the
helper scripts the images run (shellcheck) and the workflows' commands."""

from __future__ import annotations

import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from builder.engine import commands as tools
from builder.model import devcontainer as devcontainer_spec
from builder.model import headjack
from builder.model.config import Settings
from builder.model.rendered import RenderedVariant, instructions
from builder.stages.lint.workflows import check_workflow, makefile_targets


@dataclass(frozen=True)
class Finding:
    tool: str
    target: str
    output: str


def _venv_tool(name: str) -> str:
    """Linters installed in the same virtualenv as this package come first."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def instruction_findings(rendered: dict[str, RenderedVariant]) -> list[Finding]:
    """Each rendered Dockerfile whose instruction list isn't the one its template declares."""
    return [Finding("instructions", f"rendered {name}/Dockerfile", f"{undeclared}: variant data became build code")
            for name, result in rendered.items() if (undeclared := result.undeclared_instructions())]


def contract_problems(dockerfile: str) -> list[str]:
    """What would stop Headjack or a Dev Containers client from starting the image, read from
    the rendered Dockerfile: an init with no flags label, an init whose USER can't run it, a
    flags label that isn't key=value pairs, a devcontainer.metadata label that isn't the
    specification's JSON, an init that such a client would replace."""
    labels: dict[str, str] = {}
    user = ""
    for instruction, arguments in instructions(dockerfile):
        if instruction == "LABEL":
            for token in shlex.split(arguments):
                key, _, value = token.partition("=")
                labels[key] = value.replace("\\$", "$")  # a literal `$` is written `\$`
        elif instruction == "USER":
            user = arguments.split(":")[0]
    problems = []
    for key, value in sorted(labels.items()):
        if key.endswith(".flags") or key == headjack.UNPRIVILEGED_LABEL:
            try:
                headjack.check_flags(value)
            except headjack.ContractError as exc:
                problems.append(f"label {key}: {exc}")
    if devcontainer_spec.LABEL in labels:
        try:
            entries = devcontainer_spec.parse_label(labels[devcontainer_spec.LABEL])
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            problems.append(f"label {devcontainer_spec.LABEL}: {str(exc).splitlines()[0]}")
        else:
            overridden = devcontainer_spec.merged(entries).get("overrideCommand") is not False
            if headjack.INIT_LABEL in labels and overridden:
                problems.append(f"{headjack.INIT_LABEL} is set but {devcontainer_spec.LABEL} lacks overrideCommand "
                                "false: Dev Containers clients would replace the init with their own shell")
    if headjack.INIT_LABEL in labels:
        if not any(headjack.flags_label(r) in labels for r in ("docker", "podman")):
            problems.append(f"{headjack.INIT_LABEL} is set but neither {headjack.flags_label('docker')} "
                            f"nor {headjack.flags_label('podman')} is: Headjack would start the init with no flags")
        if user not in ("root", "0"):
            problems.append(f"{headjack.INIT_LABEL} is set but the image ends as USER {user or '(unset)'}: "
                            "Headjack starts PID 1 as the image's USER and an init needs root")
    return problems


def lint(
    settings: Settings, rendered: dict[str, RenderedVariant], variant_files: list[Path], cli: click.Group,
    generated_scripts: dict[str, str] | None = None,
) -> list[Finding]:
    """hadolint, yamllint, shellcheck (on the helper scripts and GENERATED_SCRIPTS, name ->
    text), and the workflows' commands judged by CLI's own parser."""
    findings: list[Finding] = []
    hadolint = _venv_tool("hadolint")
    tools.require(hadolint, "install the test extras (`make setup`)")
    config = settings.project_dir / ".hadolint.yaml"
    findings += instruction_findings(rendered)
    for name, result in rendered.items():
        broken = contract_problems(result.dockerfile)
        if broken:
            findings.append(Finding("headjack contract", f"rendered {name}/Dockerfile", "\n".join(broken)))
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
    findings += _shellcheck_findings(settings, generated_scripts or {})
    targets = makefile_targets(settings.project_dir / "Makefile")
    for workflow in sorted((settings.project_dir / ".github" / "workflows").glob("*.yml")):
        problems = check_workflow(workflow, cli, targets)
        if problems:
            findings.append(Finding("workflow commands", workflow.name, "\n".join(map(str, problems))))
    return findings


def _shellcheck_findings(settings: Settings, generated_scripts: dict[str, str]) -> list[Finding]:
    """shellcheck on the helper scripts of dockerfiles/files and on GENERATED_SCRIPTS (name -> text)."""
    findings: list[Finding] = []
    scripts = [p for p in sorted((settings.templates_dir / "files").rglob("*"))
               if p.is_file() and p.read_bytes().startswith(b"#!")]
    if scripts:
        shellcheck = tools.require("shellcheck", "install shellcheck (`make setup`)")
        proc = tools.run([shellcheck, "--format", "gcc", *map(str, scripts)], check=False)
        if proc.returncode != 0:
            findings.append(Finding("shellcheck", "helper scripts in dockerfiles/files", proc.stdout + proc.stderr))
    for name, text in generated_scripts.items():
        shellcheck = tools.require("shellcheck", "install shellcheck (`make setup`)")
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "script"
            script.write_text(text, encoding="utf-8")
            proc = tools.run([shellcheck, "--format", "gcc", str(script)], check=False)
        if proc.returncode != 0:
            findings.append(Finding("shellcheck", name, (proc.stdout + proc.stderr).replace(str(script), name)))
    return findings
