"""Docker clients other than the command runner, behind one thin adapter each.

python-on-whales drives the docker CLI (buildx, see `engine.buildx`);
testcontainers (docker-py) starts and execs the smoke stage's containers. Both
go through here so their calls share the runner's rules: a `docker` that is
missing is named, every exec has a timeout, and output is redacted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from python_on_whales import DockerClient

from builder.engine.commands import redact, require, run
from builder.model.errors import FactoryError

# Ryuk, testcontainers' reaper, is an image that may not be pullable (air-gapped
# hosts); every container started here carries a run label and is removed by us.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def docker_client() -> DockerClient:
    """python-on-whales client: it runs the `docker` CLI, so it belongs here too."""
    require("docker")
    return DockerClient()


class Container:
    """One testcontainers container: started detached, exec'd with a timeout, always removable.

    `flags` are docker-py keyword arguments (privileged, cap_add, security_opt,
    cgroupns) plus `binds` {host: {bind, mode}}, `tmpfs` {path: options} and
    `anonymous_volumes` [path].
    """

    def __init__(self, image: str, *, platform: str, command: list[str], labels: dict[str, str],
                 flags: dict[str, Any]) -> None:
        from docker.types import Mount
        from testcontainers.core.container import DockerContainer

        require("docker")
        flags = dict(flags)
        self._inner = DockerContainer(image)
        self._inner.with_command(command)
        for host, spec in flags.pop("binds", {}).items():
            self._inner.with_volume_mapping(host, spec["bind"], spec["mode"])
        for path in flags.pop("tmpfs", {}):
            self._inner.with_tmpfs_mount(path)
        mounts = [Mount(target=p, source=None, type="volume") for p in flags.pop("anonymous_volumes", [])]
        self._inner.with_kwargs(platform=platform, labels=labels, mounts=mounts, **flags)

    def start(self) -> None:
        self._inner.start()

    @property
    def id(self) -> str:
        return str(self._inner.get_wrapped_container().id)

    def state(self) -> tuple[str, int | None]:
        """(status, exit code) as the engine sees it now."""
        wrapped = self._inner.get_wrapped_container()
        wrapped.reload()
        return str(wrapped.status), wrapped.attrs["State"].get("ExitCode")

    def exec(self, argv: list[str], *, user: str = "", workdir: str | None = None,
             timeout: int = 120) -> tuple[int, str]:
        """Run ARGV (no shell) with `timeout` enforced inside the container and, should the
        daemon hang, outside it too; a timed-out command gives exit 124."""
        from testcontainers.core.container import ExecConfig

        guarded = ["timeout", "--kill-after=5", str(timeout), *argv]
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = self._inner.exec(ExecConfig(command=guarded, user=user, workdir=workdir))
            except Exception as exc:  # the daemon's own errors, reported as the command's output
                box["error"] = exc

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(timeout + 30)  # the in-container timeout should always fire first
        if worker.is_alive():
            return 124, f"no answer after {timeout + 30} s"
        if "error" in box:
            return 125, redact(str(box["error"]))
        result = box["result"]
        return int(result.exit_code), redact(result.output.decode(errors="replace"))

    def logs(self) -> str:
        try:
            out, err = self._inner.get_logs()
            text: str = (out + err).decode(errors="replace")
        except Exception:  # container already gone
            return ""
        return redact(text[-8000:])

    def stop(self, timeout: int) -> float:
        """Stop with the image's stop signal; return the seconds it took."""
        start = time.monotonic()
        self._inner.get_wrapped_container().stop(timeout=timeout)
        return time.monotonic() - start

    def remove(self) -> None:
        self._inner.stop()  # testcontainers' stop removes the container and its volumes


def remove_labelled(label: str) -> None:
    """Remove every container carrying LABEL (belt and braces after Ctrl-C)."""
    found = run(["docker", "ps", "-aq", "--filter", f"label={label}"], check=False).stdout.split()
    if found:
        run(["docker", "rm", "-f", "-v", *found], check=False)


def pull_and_inspect(reference: str, platform: str) -> dict[str, Any]:
    """Pull REFERENCE for PLATFORM and return `docker image inspect`'s document of it."""
    pulled = run(["docker", "pull", "--quiet", "--platform", platform, reference], check=False, timeout=900)
    if pulled.returncode != 0:
        raise FactoryError(f"image {reference} ({platform}) can't be pulled: {pulled.stderr.strip()}")
    found: dict[str, Any] = json.loads(run(["docker", "image", "inspect", reference]).stdout)[0]
    return found


PRIVILEGE_REFUSALS = ("unable to apply caps", "operation not permitted")
"""What the runtime says when the host refuses --privileged (a VM without CAP_SYS_RESOURCE)."""


def privileged_runs(reference: str, label: str) -> bool:
    """Whether this host runs REFERENCE --privileged (some VMs refuse it): as root, like an
    init (a non-root user gets no capabilities, so it would pass anyway). Any other failure
    (a pull error, a timeout) is an error, never taken for the host refusing."""
    probe = run(["docker", "run", "--rm", "--privileged", "--user", "0", "--label", label,
                 "--entrypoint", "true", reference], check=False, timeout=300)
    if probe.returncode != 0 and not any(sign in probe.stderr for sign in PRIVILEGE_REFUSALS):
        raise FactoryError(f"the --privileged probe failed for another reason than the host refusing it: "
                           f"{probe.stderr.strip()[-300:]}")
    return probe.returncode == 0


def engine_arch() -> str:
    """The engine's own CPU in platform terms (amd64, arm64)."""
    raw = run(["docker", "info", "--format", "{{.Architecture}}"], timeout=30).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(raw, raw)
