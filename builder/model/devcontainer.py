"""The Dev Containers side of the image contract: the `devcontainer.metadata` label.

VS Code, Codespaces, DevPod, the `devcontainer` CLI and Headjack's devcontainer mode
read what an image needs from this label: a JSON array with one entry per image
layer, parents' entries first (the Dev Containers specification, "image metadata").
A variant file's `devcontainer:` key is its own entry; the label carries its
ancestors' entries and then its own.

Only the properties the specification allows in image metadata are accepted (the
ones the reference CLI picks from an image: `imageMetadata` in @devcontainers/cli),
with the types of the specification's schema (devContainer.base.schema.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABEL = "devcontainer.metadata"

LifecycleCommand = str | list[str] | dict[str, str | list[str]]


class Mount(BaseModel):
    """A `--mount` for the container, as the schema's `Mount` definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["bind", "volume"]
    source: str | None = None
    target: str = Field(min_length=1)


class HostRequirements(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: int | None = Field(None, ge=1)
    memory: str | None = Field(None, pattern=r"^\d+([tgmk]b)?$")
    storage: str | None = Field(None, pattern=r"^\d+([tgmk]b)?$")
    gpu: bool | Literal["optional"] | dict[str, Any] | None = None


class ImageMetadata(BaseModel):
    """One entry of `devcontainer.metadata`. Keys are the specification's own (camelCase)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    remoteUser: str | None = None
    containerUser: str | None = None
    updateRemoteUserUID: bool | None = None
    userEnvProbe: Literal["none", "loginShell", "loginInteractiveShell", "interactiveShell"] | None = None
    containerEnv: dict[str, str] | None = None
    remoteEnv: dict[str, str | None] | None = None
    overrideCommand: bool | None = None
    """false: the client keeps the image's ENTRYPOINT and CMD (an init image's PID 1)."""
    entrypoint: str | None = None
    init: bool | None = None
    privileged: bool | None = None
    capAdd: list[str] | None = None
    securityOpt: list[str] | None = None
    mounts: list[Mount | str] | None = None
    forwardPorts: list[int | str] | None = None
    portsAttributes: dict[str, dict[str, Any]] | None = None
    otherPortsAttributes: dict[str, Any] | None = None
    shutdownAction: Literal["none", "stopContainer", "stopCompose"] | None = None
    hostRequirements: HostRequirements | None = None
    onCreateCommand: LifecycleCommand | None = None
    updateContentCommand: LifecycleCommand | None = None
    postCreateCommand: LifecycleCommand | None = None
    postStartCommand: LifecycleCommand | None = None
    postAttachCommand: LifecycleCommand | None = None
    waitFor: Literal["initializeCommand", "onCreateCommand", "updateContentCommand",
                     "postCreateCommand", "postStartCommand"] | None = None
    customizations: dict[str, Any] | None = None

    @field_validator("forwardPorts")
    @classmethod
    def _ports(cls, value: list[int | str] | None) -> list[int | str] | None:
        for port in value or ():
            if isinstance(port, int) and not 0 <= port <= 65535:
                raise ValueError(f"port {port} is out of range")
        return value

    def as_json(self) -> dict[str, Any]:
        """The entry as the label holds it: only the keys the variant file set."""
        return self.model_dump(mode="json", exclude_none=True)


def label_value(entries: Iterable[ImageMetadata]) -> str:
    """The label's text: a JSON array, one entry per layer, in order (compact, keys sorted,
    so equal inputs give equal bytes)."""
    return json.dumps([e.as_json() for e in entries], sort_keys=True, separators=(",", ":"))


def parse_label(text: str) -> list[ImageMetadata]:
    """Read a label back; a ValueError names what is wrong."""
    data = json.loads(text)
    if isinstance(data, dict):  # the specification allows a single object too
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{LABEL} must be a JSON array of objects, got {type(data).__name__}")
    return [ImageMetadata.model_validate(item) for item in data]


def merged(entries: Sequence[ImageMetadata]) -> dict[str, Any]:
    """What a client makes of the entries for the properties we rely on: the last entry
    that sets a single value wins, lists and mounts add up (the CLI's own merge rules)."""
    result: dict[str, Any] = {}
    mounts: dict[str, Mount | str] = {}
    for entry in entries:
        for key, value in entry.as_json().items():
            if key in ("capAdd", "securityOpt"):
                result[key] = sorted({*result.get(key, []), *value})
            elif key in ("containerEnv", "remoteEnv"):
                result[key] = {**result.get(key, {}), **value}
            elif key != "mounts":
                result[key] = value
        for mount in entry.mounts or ():
            target = mount.target if isinstance(mount, Mount) else mount
            mounts[target] = mount
    if mounts:
        result["mounts"] = [m.model_dump(exclude_none=True) if isinstance(m, Mount) else m for m in mounts.values()]
    # privileged and init: any entry that asks for them gets them
    for key in ("privileged", "init"):
        if any(getattr(e, key) for e in entries):
            result[key] = True
    return result
