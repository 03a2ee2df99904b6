"""Headjack's image contract: the labels it reads and how it starts a container from them.

Mirrors Headjack's own code (internal/flags, internal/container, internal/instance):
- `io.headjack.init` is PID 1's command, split on white space; default `sleep infinity`;
- `io.headjack.<runtime>.flags` holds space-separated `key=value` pairs. Each becomes
  `--key=value`, `true` a bare `--key`, `false` nothing; a repeated key gives the flag
  once per value; flags are emitted sorted by key;
- the container starts with `run --detach --name NAME <flags> -v WORKTREE:/workspace IMAGE <init>`
  (no `--user`: PID 1 runs as the image's USER), and agents run with
  `exec [-w DIR] NAME CMD` (no `-u`: they run as the image's USER too).

Pure functions only: the smoke stage and the conformance tests turn a `HeadjackRun`
into a real container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from builder.model.errors import FactoryError

RUNTIMES = ("docker", "podman", "apple")
INIT_LABEL = "io.headjack.init"
DEFAULT_INIT = ("sleep", "infinity")
WORKSPACE = "/workspace"

OWN_PREFIX = "io.headjack.images."
"""Our own labels live under this prefix, never in Headjack's namespace."""
VARIANT_LABEL = OWN_PREFIX + "variant"
IDENTITY_LABEL = OWN_PREFIX + "build-identity"
SMOKE_RUN_LABEL = OWN_PREFIX + "smoke-run"
SBOM_RUN_LABEL = OWN_PREFIX + "sbom"
UNPRIVILEGED_LABEL = OWN_PREFIX + "docker.unprivileged-flags"
"""Flags that stand in for `privileged=true` on hosts that refuse --privileged (ours, not Headjack's)."""

FlagValue = str | bool | list[str]
Flags = dict[str, FlagValue]


def flags_label(runtime: str) -> str:
    return f"io.headjack.{runtime}.flags"


class ContractError(FactoryError, ValueError):
    """A label Headjack would misread."""


def check_flags(text: str) -> None:
    """Refuse a flags label that isn't space-separated `key=value` pairs (Headjack reads bare
    keys as `true`, but we write every value out, so a bare key is a typo)."""
    for part in text.split():
        key, sep, _value = part.partition("=")
        if not sep or not key:
            raise ContractError(f"'{part}' is not a key=value pair")
        if key.startswith("-"):
            raise ContractError(f"'{part}': write the flag without dashes ({key.lstrip('-')}=...)")


def parse_flags(text: str) -> Flags:
    """Headjack's `flags.FromLabel`, rule for rule."""
    result: Flags = {}
    for part in text.split():
        key, has_equals, value = part.partition("=")
        if not key:
            continue
        if not has_equals:
            result[key] = True
            continue
        if value.lower() in ("true", "false"):
            result[key] = value.lower() == "true"
            continue
        existing = result.get(key)
        if isinstance(existing, str):
            result[key] = [existing, value]
        elif isinstance(existing, list):
            result[key] = [*existing, value]
        else:
            result[key] = value
    return result


def to_args(flags: Mapping[str, FlagValue]) -> list[str]:
    """Headjack's `flags.ToArgs`: sorted by key."""
    args: list[str] = []
    for key in sorted(flags):
        value = flags[key]
        if isinstance(value, bool):
            if value:
                args.append(f"--{key}")
        elif isinstance(value, str):
            args.append(f"--{key}={value}")
        else:
            args.extend(f"--{key}={item}" for item in value)
    return args


def init_command(labels: Mapping[str, str]) -> list[str]:
    """PID 1's command: `strings.Fields` of the init label, as Headjack splits it."""
    return labels.get(INIT_LABEL, "").split() or list(DEFAULT_INIT)


@dataclass(frozen=True)
class HeadjackRun:
    """How Headjack starts an image, plus what this host forced us to change."""

    runtime: str
    init: list[str]
    flags: Flags
    substituted: str = ""
    """Empty when nothing differs from Headjack; else what was replaced, and why."""
    notes: list[str] = field(default_factory=list)

    @property
    def has_init(self) -> bool:
        return self.init != list(DEFAULT_INIT)

    def run_argv(self, name: str, image: str, workspace: str, extra: Sequence[str] = ()) -> list[str]:
        """`<runtime> run ...` exactly as Headjack builds it; EXTRA (labels, --platform)
        goes before the flags and changes nothing Headjack decides."""
        return ["run", "--detach", "--name", name, *extra, *to_args(self.flags),
                "-v", f"{workspace}:{WORKSPACE}", image, *self.init]


def wants_privileged(labels: Mapping[str, str], runtime: str = "docker") -> bool:
    """Whether the image's flags for RUNTIME ask for --privileged (then a host that refuses it
    needs the stand-in)."""
    return parse_flags(labels.get(flags_label(runtime), "")).get("privileged") is True


def plan_run(labels: Mapping[str, str], runtime: str = "docker", *, privileged_refused: bool = False) -> HeadjackRun:
    """The one place that decides how an image starts: Headjack's rules, with the single
    allowed deviation of a host that refuses --privileged (then the image's own
    unprivileged flags stand in for `privileged=true`, and the result says so)."""
    if runtime not in RUNTIMES:
        raise ContractError(f"unknown runtime '{runtime}' (Headjack knows {', '.join(RUNTIMES)})")
    flags = parse_flags(labels.get(flags_label(runtime), ""))
    substituted = ""
    if runtime == "docker" and wants_privileged(labels) and privileged_refused:
        fallback = labels.get(UNPRIVILEGED_LABEL, "")
        if not fallback:
            raise ContractError(
                f"this host refuses --privileged and the image has no {UNPRIVILEGED_LABEL} label to stand in"
            )
        del flags["privileged"]
        for key, value in parse_flags(fallback).items():
            flags[key] = _joined(flags.get(key), value)
        substituted = f"host refuses --privileged: replaced privileged=true with {fallback}"
    return HeadjackRun(runtime=runtime, init=init_command(labels), flags=flags, substituted=substituted)


def _joined(existing: FlagValue | None, added: FlagValue) -> FlagValue:
    if existing is None or isinstance(existing, bool) or isinstance(added, bool):
        return added
    mine = [existing] if isinstance(existing, str) else list(existing)
    return [*mine, *([added] if isinstance(added, str) else added)]
