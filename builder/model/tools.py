"""Tool pins as data: what a variant (or the factory's clients) installs, from which source,
at which exact version, and how it is checked and set up.

This module knows nothing of Docker or Jinja: it only reads and checks.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from builder.model import safe
from builder.model.config import FactoryConfig, Strict, parse_duration

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,40}$"
"""Names of tools and variants alike."""
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def _sha256(value: str) -> str:
    if not SHA256_PATTERN.match(value):
        raise ValueError(f"sha256 must be 64 lowercase hex characters, got {value!r}")
    return value


class Download(Strict):
    """One archive file: where it is and the checksum the build verifies."""

    url: safe.Url
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _checksum(cls, value: str) -> str:
        return _sha256(value)


class ToolSettings(Strict):
    """How a tool is set up once installed (an agent CLI's self-update switch): set the same
    way in the image and by the agents Feature."""

    env: dict[safe.EnvName, safe.Text] = Field(default_factory=dict)
    """Variables the tool reads, set in the image's environment."""
    files: dict[safe.AbsolutePath, safe.Text] = Field(default_factory=dict)
    """Path -> one line of content: system-wide config files the tool reads."""


class Tool(Strict):
    """A user-facing tool with an exact version and the source it comes from."""

    name: str = Field(pattern=NAME_PATTERN)
    source: Literal["apt", "npm", "pypi", "archive"]
    version: safe.Version
    """apt: the upstream version the installed Debian package must have (e.g. 14.1.1);
    npm/pypi: the exact release; archive: the release the URL names."""
    package: safe.PackageName | None = None
    """Package name when it differs from `name` (e.g. fd-find, @openai/codex)."""
    url: safe.Url | None = None
    sha256: str | None = None
    """archive only: the tarball and its checksum, verified during the build."""
    archives: dict[Literal["amd64", "arm64"], Download] = Field(default_factory=dict)
    """archive only, instead of url/sha256: one download per architecture (a native binary)."""
    strip_components: int = 1
    exclude: list[str] = Field(default_factory=list)
    """archive only: tar --exclude patterns left out when unpacking (headers, docs)."""
    links: dict[safe.CommandName, safe.RelativePath] = Field(default_factory=dict)
    """archive only: command name -> path inside the unpacked archive, linked onto PATH."""
    check: str | None = None
    """Command that proves the tool works; default `<name> --version`."""
    settings: ToolSettings = Field(default_factory=ToolSettings)
    optional: bool = False
    """Leave the tool out (recorded in the image) when its source can't be reached."""
    update: Literal["latest", "minor", "patch", "pinned"] = "latest"
    """How far `bump` may move it: to the newest release, within its major, within its
    minor, or never."""
    min_age: str | None = None
    """How old a release must be before `bump` takes it, e.g. 2d (default: the factory's)."""
    feed: str | None = None
    """archive only: where `bump` finds newer releases, `npm:PACKAGE` (the tarball the npm
    registry serves) or `github:OWNER/REPO` (its release archives)."""

    @field_validator("min_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern or any(ch.isspace() or ch in "'\"\\" for ch in pattern):
                raise ValueError(f"exclude pattern {pattern!r}: no white space, quotes or backslashes")
        return value

    @field_validator("feed")
    @classmethod
    def _feed(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(npm:\S+|github:[\w.-]+/[\w.-]+)$", value):
            raise ValueError(f"feed {value!r} is neither npm:PACKAGE nor github:OWNER/REPO")
        return value

    @field_validator("version")
    @classmethod
    def _exact(cls, value: str) -> str:
        if any(ch in value for ch in "*^~<>= "):
            raise ValueError(f"version '{value}' is not exact (no ranges or wildcards)")
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> Tool:
        if self.source == "archive":
            if self.archives and (self.url or self.sha256):
                raise ValueError(f"tool '{self.name}': give `url`/`sha256` or `archives` (per architecture), not both")
            if not self.archives and not self.url:
                raise ValueError(f"tool '{self.name}': an archive needs `url` (or `archives` per architecture)")
            if not self.archives:
                try:
                    _sha256(self.sha256 or "")
                except ValueError as exc:
                    raise ValueError(f"tool '{self.name}': {exc}") from None
            if not self.links:
                raise ValueError(f"tool '{self.name}': an archive needs `links` (command -> path)")
        elif self.url or self.sha256 or self.links or self.archives or self.exclude:
            raise ValueError(f"tool '{self.name}': url/sha256/archives/exclude/links are for source 'archive' only")
        return self

    @property
    def downloads(self) -> dict[str, Download]:
        """archive only: the download per architecture ('*': one for all of them)."""
        if self.archives:
            return {str(arch): download for arch, download in self.archives.items()}
        if self.url and self.sha256:
            return {"*": Download(url=self.url, sha256=self.sha256)}
        return {}

    def download_for(self, arch: str) -> Download | None:
        """The archive an image for ARCH ('amd64', 'arm64') installs, if any."""
        downloads = self.downloads
        return downloads.get(arch) or downloads.get("*")

    @property
    def package_name(self) -> str:
        return self.package or self.name

    @property
    def check_command(self) -> str:
        return self.check or f"{self.name} --version"


CLIENTS = "_clients"
"""Where the factory's clients sit among the variants' tools in the lock and in `bump`
(no variant name starts with `_`)."""


def client_tools(config: FactoryConfig) -> tuple[Tool, ...]:
    """The factory's clients (config `clients:`) as the tools they are to the lock and bump."""
    return tuple(Tool(name=c.name, source=c.source, package=c.package, version=c.version, update=c.update,
                      min_age=c.min_age) for c in config.clients)
