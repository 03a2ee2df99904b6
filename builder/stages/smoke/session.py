"""What every smoke check stands on: the image under test (`Target`, `ImageFacts`), the
started container (`Session`), how a check's outcome is timed and told, and the host's
answers asked once (its CPU, whether it allows --privileged)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.engine import containers
from builder.engine.containers import Container
from builder.model import headjack
from builder.model.errors import FactoryError
from builder.model.records import CheckOutcome

RUN_LABEL = headjack.SMOKE_RUN_LABEL
OMITTED_DETAIL = "left out at build time: its source could not be fetched"
TIMEOUT_EXIT_CODES = (124, 137)


@dataclass(frozen=True)
class Target:
    variant: str
    platform: str
    reference: str
    """repository@sha256:... of the single-platform image."""
    root_reference: str | None = None
    """The root image for this platform (a small image runtime checks can use)."""


@dataclass(frozen=True)
class ImageFacts:
    """What `docker image inspect` says about the pulled image."""

    user: str
    workdir: str
    stop_signal: str
    labels: dict[str, str]
    env: dict[str, str]
    architecture: str
    entrypoint: tuple[str, ...] = ()

    @classmethod
    def of(cls, reference: str, platform: str) -> ImageFacts:
        raw = containers.pull_and_inspect(reference, platform)
        config = raw.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        return cls(
            user=config.get("User") or "", workdir=config.get("WorkingDir") or "",
            stop_signal=config.get("StopSignal") or "", labels=config.get("Labels") or {},
            env=env, architecture=raw.get("Architecture", ""), entrypoint=tuple(config.get("Entrypoint") or ()),
        )


_privileged_probe: dict[str, bool] = {}


def privileged_allowed(reference: str) -> bool:
    """Whether this host lets a container run --privileged (some VMs refuse it); asked once."""
    if "result" not in _privileged_probe:
        _privileged_probe["result"] = containers.privileged_runs(reference, f"{RUN_LABEL}=probe")
    return _privileged_probe["result"]


@dataclass(frozen=True)
class ClientOptions:
    """How the Dev Containers client runs: which CLI, and as which host user."""

    cli: str
    """The devcontainer executable (the project's pinned one)."""
    host_user: str | None
    """The host account that runs the CLI (None: whoever runs us)."""


class Omitted(FactoryError):
    """Raised by a check that can't be judged here; the reason is reported, never hidden."""


_host_arch: dict[str, str] = {}


def host_arch() -> str:
    """The engine's own CPU in platform terms (amd64, arm64)."""
    if "arch" not in _host_arch:
        _host_arch["arch"] = containers.engine_arch()
    return _host_arch["arch"]


class Session:
    """A started container plus helpers the checks use."""

    def __init__(self, container: Container, facts: ImageFacts, workspace: Path, target: Target) -> None:
        self.container = container
        self.facts = facts
        self.workspace = workspace
        self.target = target

    @property
    def emulated(self) -> bool:
        """True when this platform runs under QEMU user emulation on this engine."""
        return self.target.platform.split("/")[1] != host_arch()

    @property
    def user(self) -> str:
        return self.facts.user or "root"

    def exec(self, argv: list[str], *, user: str | None = None, timeout: int = 120) -> tuple[int, str]:
        """Run ARGV by plain exec (no shell, no login) in /workspace; timed out -> exit 124.

        Like Headjack, no user is passed unless a check names one: the command runs as
        the image's USER."""
        return self.container.exec(argv, user=user or "", workdir=headjack.WORKSPACE, timeout=timeout)

    def shell(self, script: str, *, user: str | None = None, timeout: int = 120) -> tuple[int, str]:
        return self.exec(["bash", "-c", script], user=user, timeout=timeout)

    def logs(self) -> str:
        return self.container.logs()


CheckFn = Callable[[Session], str | None]


def timed(name: str, kind: str, fn: Callable[[], tuple[bool, str]]) -> CheckOutcome:
    start = time.monotonic()
    try:
        ok, detail = fn()
    except Omitted as why:
        return CheckOutcome(name=name, kind=kind, status="omitted",
                            duration_s=round(time.monotonic() - start, 2), detail=str(why))
    except AssertionError as exc:
        ok, detail = False, str(exc) or "assertion failed"
    except Exception as exc:  # a broken check is a failed check, never a crash of the run
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return CheckOutcome(name=name, kind=kind, status="passed" if ok else "failed",
                        duration_s=round(time.monotonic() - start, 2), detail=detail[-2000:])


def describe(code: int, output: str, timeout: int) -> str:
    if code in TIMEOUT_EXIT_CODES:
        return f"timed out after {timeout} s; output: {output.strip()[-500:]}"
    return f"exit {code}: {output.strip()[-500:]}"
