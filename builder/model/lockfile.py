"""images.lock.yaml as a typed record: read and validated once per command, then handed
down. `stages/lock` writes it; everything else reads this model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.model.errors import FactoryError
from builder.model.graph import RootPins
from builder.model.loading import load_model, read_yaml

LOCK_FILE = "images.lock.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArchivePin(Strict):
    url: str
    sha256: str


class ToolPin(Strict):
    source: str
    version: str
    package: str | None = None
    url: str | None = None
    sha256: str | None = None
    archives: dict[str, ArchivePin] | None = None


class BootstrapInputs(Strict):
    suite: str
    mirror: str
    packages: list[str]
    tree: str | None = None
    """The digest of the factory's files in the root (`model.root_tree`); a lock written
    before the root held them has none, so its pins are made again."""


class RootLock(Strict):
    """A bootstrapped root (its inputs and, once made, each platform's digest and packages)
    or an ordinary reference (its index digest and per-platform digests)."""

    bootstrap: BootstrapInputs | None = None
    images: dict[str, str] | None = None
    packages: dict[str, dict[str, str]] | None = None
    reference: str | None = None
    index: str | None = None
    platforms: dict[str, str] | None = None

    def pins_for(self, inputs: BootstrapInputs) -> RootPins | None:
        """The pinned digests of a bootstrapped root, while INPUTS are the ones it was made from."""
        if self.bootstrap != inputs or self.images is None:
            return None
        return RootPins(images=dict(self.images), packages=dict(self.packages or {}))

    def pinned_reference(self, reference: str) -> str | None:
        """REFERENCE at the index digest the lock pins, while the lock is about that reference."""
        if self.reference != reference or not self.index:
            return None
        return f"{reference.split('@')[0]}@{self.index}"


class Lock(Strict):
    schema_version: Literal[1] = Field(alias="schema")
    root: RootLock
    tools: dict[str, dict[str, ToolPin]]
    """Variant (or the clients' key) -> tool -> its pin."""
    debian: dict[str, dict[str, str]] | None = None
    """A record of what each image installed ('variant platform' -> package -> version)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """The lock as the YAML document it is written as."""
        return self.model_dump(by_alias=True, exclude_none=True)


def load_lock(path: Path) -> Lock:
    """The lock at PATH, validated: a malformed one is one error naming the file and key."""
    if not path.is_file():
        raise FactoryError(f"{path} does not exist: run `hjk-images lock`")
    data = read_yaml(path)
    if not isinstance(data, dict) or data.get("schema") != 1:
        raise FactoryError(f"{path}: not a lockfile of schema 1 (edited by hand?); run `hjk-images lock`")
    return load_model(path, Lock, data)
