"""The Dev Containers CLI (`@devcontainers/cli`), the reference client of the Dev Containers
specification: VS Code, Codespaces, DevPod and Headjack's devcontainer mode start images
the way it does. The smoke stage and the tests start images with it, unchanged.

A workspace here is a folder whose `.devcontainer/devcontainer.json` names only the
image, as a new user's would. Every container the CLI starts carries our id label, and
`remove` takes it away with the named volumes its metadata asked for and the uid-remap
image the CLI built.

Each workspace's CLI runs get their own TMPDIR (`private_tmp`): the CLI writes its uid-remap
Dockerfile and Feature build folders under $TMPDIR/devcontainercli-<user>, named by the
millisecond, so two `up`s started together by one user race there (`rename ... ENOENT`).
One thing TMPDIR can't part: without BuildKit, a Feature's files reach its build as an image
of one fixed name (dev_container_feature_content_temp), so Feature builds on one engine must
not overlap (the tests hold a host-wide lock for them).
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.engine import commands as tools
from builder.model.errors import FactoryError

CLI_NAME = "devcontainer"
LOCAL_CLI = Path(".tools") / "node_modules" / ".bin" / CLI_NAME
"""Where `make setup` installs the pinned CLI, under the project folder."""


def cli_path(project_dir: Path) -> str:
    """The project's pinned CLI, else one on PATH; missing: say how to get it."""
    local = project_dir / LOCAL_CLI
    if local.is_file():
        return str(local)
    return tools.require(CLI_NAME, "run `make setup` (it installs the pinned @devcontainers/cli into .tools/)")


def cli_version(cli: str) -> str:
    return tools.run([cli, "--version"], timeout=60).stdout.strip()


def write_workspace(folder: Path, image: str, owner: str | None) -> Path:
    """A project as a new user has it: a devcontainer.json naming only IMAGE, owned by OWNER."""
    config = folder / ".devcontainer" / "devcontainer.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"image": image}, indent=2) + "\n", encoding="utf-8")
    if owner:
        user = pwd.getpwnam(owner)
        for path in (folder, *folder.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid)
    return config


def private_tmp(folder: Path, owner: str | None) -> Path:
    """FOLDER/cli-tmp, OWNER's alone: the TMPDIR of one workspace's CLI runs."""
    tmp = folder / "cli-tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    if owner:
        user = pwd.getpwnam(owner)
        os.chown(tmp, user.pw_uid, user.pw_gid)
    return tmp


def with_tmpdir(tmpdir: Path, argv: Sequence[str]) -> list[str]:
    """ARGV with TMPDIR set, through env so that it survives runuser."""
    return ["env", f"TMPDIR={tmpdir}", *argv]


def privileged_stand_in(folder: Path, stand_in: Sequence[str]) -> Path:
    """A `--docker-path` program that runs docker with `--privileged` replaced by STAND_IN
    (for hosts that refuse --privileged) and every other argument unchanged."""
    script = folder / "docker-without-privileged"
    flags = " ".join(shlex.quote(flag) for flag in stand_in)
    script.write_text(
        "#!/bin/sh\n"
        "# This host refuses --privileged: the image's own stand-in flags replace it; nothing else changes.\n"
        'for arg do\n  shift\n'
        f'  if [ "$arg" = --privileged ]; then set -- "$@" {flags}; else set -- "$@" "$arg"; fi\n'
        'done\nexec docker "$@"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    folder.chmod(folder.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    return script


@dataclass(frozen=True)
class DevContainer:
    """One container the CLI started, and how to reach it again."""

    cli: str
    workspace: Path
    id_labels: tuple[str, ...]
    container_id: str
    remote_user: str
    remote_workspace: str
    host_user: str | None
    docker_path: Path | None
    tmpdir: Path
    log: str

    def _argv(self, subcommand: str, *command: str) -> list[str]:
        """The CLI's options first: what follows the command is the command's own."""
        argv = [self.cli, subcommand, "--workspace-folder", str(self.workspace), *_label_args(self.id_labels)]
        if self.docker_path:
            argv += ["--docker-path", str(self.docker_path)]
        return tools.run_as(self.host_user, with_tmpdir(self.tmpdir, [*argv, *command]))

    def exec(self, command: Sequence[str], timeout: int = 300) -> tuple[int, str]:
        """`devcontainer exec` as the CLI runs it: the remote user, in the remote workspace."""
        try:
            proc = tools.run(self._argv("exec", *command), check=False, timeout=timeout)
        except tools.CommandError as exc:
            return 124, str(exc)
        return proc.returncode, proc.stdout + proc.stderr

    def shell(self, script: str, timeout: int = 300) -> tuple[int, str]:
        return self.exec(["sh", "-c", script], timeout=timeout)


def _label_args(labels: Sequence[str]) -> list[str]:
    return [arg for label in labels for arg in ("--id-label", label)]


def up_argv(cli: str, workspace: Path | str, id_labels: Sequence[str], docker_path: Path | str | None,
            options: Sequence[str] = ()) -> list[str]:
    argv = [cli, "up", "--workspace-folder", str(workspace), *_label_args(id_labels), *options]
    return argv + (["--docker-path", str(docker_path)] if docker_path else [])


def up(cli: str, workspace: Path, id_labels: Sequence[str], *, host_user: str | None, docker_path: Path | None,
       tmpdir: Path, timeout: int = 1200, options: Sequence[str] = ()) -> DevContainer:
    """`devcontainer up` for WORKSPACE (OPTIONS: more of the CLI's own), with TMPDIR from
    `private_tmp`; a FactoryError carries the CLI's own words."""
    argv = with_tmpdir(tmpdir, up_argv(cli, workspace, id_labels, docker_path, options))
    proc = tools.run(tools.run_as(host_user, argv), check=False, timeout=timeout)
    outcome = _last_json(proc.stdout)
    if proc.returncode != 0 or outcome.get("outcome") != "success":
        said = outcome.get("message") or outcome.get("description") or proc.stderr.strip()[-1500:]
        raise FactoryError(f"`devcontainer up` failed: {said}")
    return DevContainer(
        cli=cli, workspace=workspace, id_labels=tuple(id_labels), container_id=str(outcome["containerId"]),
        remote_user=str(outcome.get("remoteUser", "")), remote_workspace=str(outcome.get("remoteWorkspaceFolder", "")),
        host_user=host_user, docker_path=docker_path, tmpdir=tmpdir, log=proc.stderr[-4000:],
    )


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            found = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict):
            return found
    return {}


def remove(id_label: str) -> None:
    """Remove the containers carrying ID_LABEL, the named volumes their metadata made and the
    uid-remap images the CLI built for them."""
    ids = tools.run(["docker", "ps", "-aq", "--filter", f"label={id_label}"], check=False).stdout.split()
    if not ids:
        return
    inspected = json.loads(tools.run(["docker", "inspect", *ids], check=False).stdout or "[]")
    volumes = [m["Name"] for c in inspected for m in c.get("Mounts") or []
               if m.get("Type") == "volume" and m.get("Name")]
    images = made_images(str(c["Config"].get("Image", "")) for c in inspected)
    tools.run(["docker", "rm", "-f", "-v", *ids], check=False)
    if volumes:
        tools.run(["docker", "volume", "rm", "-f", *volumes], check=False)
    if images:
        tools.run(["docker", "image", "rm", "-f", *images], check=False)


def made_images(started_from: Iterable[str]) -> list[str]:
    """The images the CLI built for containers started from STARTED_FROM, each before the one
    it was built on: a uid remap (`<name>-uid`) sits on the Features image (`vsc-...-features`)
    the CLI built first, and removing only the one a container ran would leave the other."""
    made: list[str] = []
    for image in started_from:
        for name in (image, image.removesuffix("-uid")) if image.startswith("vsc-") else ():
            if name not in made:
                made.append(name)
    return made


def publish_feature(cli: str, folder: Path, registry: str, namespace: str) -> dict[str, Any]:
    """`devcontainer features publish` of the Feature in FOLDER to REGISTRY/NAMESPACE/<id>, with
    the tags the Features distribution spec expects (1, 1.0, 1.0.0, latest). The CLI skips a
    version the registry already holds: its answer then has no digest."""
    proc = tools.run([cli, "features", "publish", str(folder), "--registry", registry, "--namespace", namespace],
                     check=False, timeout=600)
    answer = _last_json(proc.stdout)
    if proc.returncode != 0 or not answer:
        raise FactoryError(f"`devcontainer features publish` to {registry}/{namespace} failed: "
                           f"{proc.stderr.strip()[-1500:]}")
    return answer
