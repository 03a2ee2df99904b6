"""Smoke-test an image the way Dev Containers clients start it: the real `devcontainer`
CLI, a workspace whose devcontainer.json names only the image, and `devcontainer exec`.

One container per image; every check runs in it:
- commands run as the metadata's `remoteUser`, remapped to the host user's uid;
- that host user creates, edits and commits a file in the workspace, and owns it on the host;
- an image that keeps its ENTRYPOINT (`overrideCommand: false`) has it as PID 1;
- systemd reaches `running`; an inner Docker engine answers the remote user and runs a
  container made inside (nothing can be pulled);
- the CLIs installed from npm (the agents) answer `--version`.

The one deviation is the smoke stage's own: where the host refuses --privileged, the CLI
gets a `--docker-path` program that swaps it for the image's stand-in flags.
"""

from __future__ import annotations

import functools
import os
import pwd
import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from builder.engine import devcontainer as devcontainer_cli
from builder.model import devcontainer as devcontainer_spec
from builder.model import headjack
from builder.model.errors import FactoryError
from builder.model.records import CheckOutcome, ImageResult
from builder.model.variants import OMITTED_TOOLS_FILE, Variant
from builder.stages.smoke.session import (
    RUN_LABEL,
    ClientOptions,
    ImageFacts,
    Omitted,
    Target,
    describe,
    host_arch,
    privileged_allowed,
    timed,
)

INSTANCE_LABEL = headjack.OWN_PREFIX + "dev-container"
GIT = "git -c user.name=Smoke -c user.email=smoke@headjack.invalid"
EMULATED_INIT = "qemu-user emulation can't run systemd's namespaced units; checked on native platforms"
EMULATED_ENGINE = "an inner Docker engine can't run under qemu-user emulation; checked on native platforms"


def host_account(user: str | None) -> pwd.struct_passwd:
    return pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())


def check_options(options: ClientOptions) -> None:
    """As root the CLI remaps nothing: a test run as root needs a non-root host user to
    show what a Linux user sees."""
    account = host_account(options.host_user)
    if account.pw_uid == 0:
        raise FactoryError("the devcontainer client runs the CLI as root, which remaps no uid: pass --host-user "
                           "NAME, a non-root host user in the docker group (e.g. `useradd -m -u 1002 -G docker NAME`)")


def stand_in_flags(labels: dict[str, str]) -> list[str]:
    """The image's own stand-in for --privileged, as docker arguments."""
    text = labels.get(headjack.UNPRIVILEGED_LABEL, "")
    if not text:
        raise FactoryError(f"this host refuses --privileged and the image has no {headjack.UNPRIVILEGED_LABEL} "
                           "label to stand in for it")
    return headjack.to_args(headjack.parse_flags(text))


def check_image_devcontainer(variant: Variant, target: Target, run_id: str, options: ClientOptions) -> ImageResult:
    """Start TARGET with the Dev Containers CLI and run every check in that one container."""
    account = host_account(options.host_user)
    folder = Path(tempfile.mkdtemp(prefix="hjk-devcontainer-"))
    folder.chmod(0o755)
    workspace = folder / "project"
    workspace.mkdir()
    labels = (f"{RUN_LABEL}={run_id}", f"{INSTANCE_LABEL}={uuid.uuid4().hex[:12]}")
    started_as = devcontainer_cli.up_argv("devcontainer", "WORKSPACE", labels[:1], None)
    deviation: str | None = None
    try:
        facts = ImageFacts.of(target.reference, target.platform)
        entries = devcontainer_spec.parse_label(facts.labels.get(devcontainer_spec.LABEL, "[]"))
        wanted = devcontainer_spec.merged(entries)
        docker_path = None
        if wanted.get("privileged") and not privileged_allowed(target.reference):
            flags = stand_in_flags(facts.labels)
            docker_path = devcontainer_cli.privileged_stand_in(folder, flags)
            deviation = ("host refuses --privileged: the CLI's docker (--docker-path) replaces it with "
                         + " ".join(flags))
            started_as = devcontainer_cli.up_argv("devcontainer", "WORKSPACE", labels[:1], "docker-without-privileged")
        devcontainer_cli.write_workspace(workspace, target.reference, account.pw_name)
        try:
            container = devcontainer_cli.up(options.cli, workspace, labels, host_user=options.host_user,
                                            docker_path=docker_path,
                                            tmpdir=devcontainer_cli.private_tmp(folder, account.pw_name))
        except FactoryError as exc:
            return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                               client="devcontainer", checks=[], error=f"{target.reference} ({target.platform}): {exc}",
                               started_as=started_as, deviation=deviation)
        checks = _checks(variant, target, facts, wanted, container, account)
        return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                           client="devcontainer", checks=checks, started_as=started_as, deviation=deviation,
                           logs=container.log if any(c.status == "failed" for c in checks) else None)
    except FactoryError as exc:
        return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                           client="devcontainer", checks=[], error=str(exc), started_as=started_as,
                           deviation=deviation)
    finally:
        devcontainer_cli.remove(labels[1])
        shutil.rmtree(folder, ignore_errors=True)


def _checks(variant: Variant, target: Target, facts: ImageFacts, wanted: dict[str, object],
            container: devcontainer_cli.DevContainer, account: pwd.struct_passwd) -> list[CheckOutcome]:
    emulated = target.platform.split("/")[1] != host_arch()
    checks: list[Callable[[], CheckOutcome]] = [
        lambda: timed("devcontainer: commands run as the remote user", "devcontainer",
                       lambda: _remote_user(container, wanted)),
        lambda: timed("devcontainer: the workspace is the host user's", "devcontainer",
                       lambda: _workspace(container, account)),
    ]
    if wanted.get("overrideCommand") is False and facts.entrypoint:
        checks.append(lambda: timed("devcontainer: PID 1 is the image's ENTRYPOINT", "devcontainer",
                                     lambda: _pid1(container, facts.entrypoint)))
    if variant.runtime.init and "systemd" in variant.runtime.init[0]:
        checks.append(lambda: timed("devcontainer: systemd is running", "devcontainer",
                                     lambda: _systemd(container, emulated)))
    if any(t.name == "dockerd" for t in variant.tools):
        checks.append(lambda: timed("devcontainer: the inner engine runs a container for the remote user",
                                     "devcontainer", lambda: _inner_engine(container, emulated)))
    code, out = container.exec(["cat", OMITTED_TOOLS_FILE])
    omitted = set(out.split()) if code == 0 else set()
    results = [check() for check in checks]
    for tool in variant.tools:
        if tool.source == "npm" and tool.name not in omitted:
            command = tool.check_command
            results.append(timed(f"devcontainer: tool {tool.name}: {command}", "devcontainer",
                                  functools.partial(_tool, container, command)))
    return results


def _remote_user(container: devcontainer_cli.DevContainer, wanted: dict[str, object]) -> tuple[bool, str]:
    """Commands run as the metadata's remoteUser (a name, or a uid when given as a number)."""
    code, out = container.shell("id -un; id -u")
    name, uid = [*out.split(), "?", "?"][:2]
    want = str(wanted.get("remoteUser") or "")
    seen = uid if want.isdigit() else name
    if code != 0 or (want and seen != want):
        return False, f"commands run as {name} ({uid}), the image's metadata asks for {want}"
    return True, f"commands run as {name} ({uid}); the CLI says remoteUser {container.remote_user}"


def _workspace(container: devcontainer_cli.DevContainer, account: pwd.struct_passwd) -> tuple[bool, str]:
    """Create, edit and commit a file; it must belong to the host user on the host."""
    code, out = container.shell(
        "set -e; echo one > probe.txt; echo two >> probe.txt; "
        f"if command -v git >/dev/null; then git init -q . && git add probe.txt && {GIT} commit -qm probe "
        "&& echo COMMITTED; fi; id -u")
    if code != 0:
        return False, "creating, editing or committing a file in the workspace failed: " + describe(code, out, 300)
    probe = container.workspace / "probe.txt"
    owner = probe.stat().st_uid
    if owner != account.pw_uid:
        return False, f"probe.txt belongs to uid {owner} on the host, not to {account.pw_name} ({account.pw_uid})"
    done = "created, edited and committed" if "COMMITTED" in out else "created and edited (no git in the image)"
    return True, f"{done}; the file belongs to {account.pw_name} ({account.pw_uid}) on the host"


def _pid1(container: devcontainer_cli.DevContainer, entrypoint: tuple[str, ...]) -> tuple[bool, str]:
    """PID 1's command name (the kernel's, 15 characters: the same for a script or a binary,
    natively or under emulation) is the ENTRYPOINT's."""
    code, out = container.exec(["cat", "/proc/1/comm"])
    name, want = out.strip(), os.path.basename(entrypoint[0])[:15]
    if code != 0 or name != want:
        return False, f"PID 1 is {name or '?'}, not the ENTRYPOINT {entrypoint[0]}"
    return True, f"PID 1: {name} (the ENTRYPOINT {entrypoint[0]})"


def _wait(container: devcontainer_cli.DevContainer, script: str, timeout: int) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        code, out = container.shell(script, timeout=60)
        if code == 0 or time.monotonic() > deadline:
            return code, out
        time.sleep(2)


def _systemd(container: devcontainer_cli.DevContainer, emulated: bool) -> tuple[bool, str]:
    if emulated:
        raise Omitted(EMULATED_INIT)
    code, _ = _wait(container, "test \"$(systemctl is-system-running)\" = running", 300)
    if code != 0:
        _, state = container.shell("systemctl is-system-running; systemctl --failed --no-legend --plain")
        return False, f"systemd is not running: {state.strip()[-500:]}"
    return True, "systemctl is-system-running: running"


def _inner_engine(container: devcontainer_cli.DevContainer, emulated: bool) -> tuple[bool, str]:
    """`docker info` as the remote user, then a container from an image made inside from the
    container's own shell and the libraries it needs."""
    if emulated:
        raise Omitted(EMULATED_ENGINE)
    code, out = _wait(container, "docker info >/dev/null 2>&1", 180)
    if code != 0:
        _, status = container.shell("docker info 2>&1 | tail -3; id")
        return False, f"the inner engine does not answer the remote user: {status.strip()[-500:]}"
    made = ("set -e; files=\"/bin/sh $(ldd /bin/dash | grep -o '/[^ ]*' | tr '\\n' ' ') /bin/dash\"; "
            "tar -chf - $files 2>/dev/null | docker import - hjk-smoke-inner:made >/dev/null; "
            "docker run --rm hjk-smoke-inner:made /bin/sh -c 'echo inner-ok'")
    code, out = container.shell(made, timeout=300)
    if code != 0 or "inner-ok" not in out:
        return False, "the inner engine could not run a container: " + describe(code, out, 300)
    return True, "docker info answered; a container made inside printed inner-ok"


def _tool(container: devcontainer_cli.DevContainer, command: str) -> tuple[bool, str]:
    code, out = container.exec(shlex.split(command), timeout=600)
    if code != 0:
        return False, describe(code, out, 600)
    lines = out.strip().splitlines()
    return True, lines[-1][:200] if lines else ""
