"""Factory settings: registry, namespace, root image, platforms, tags.

`factory.yaml` at the project root holds the defaults; a team's overlay file
(`--config FILE` or HJK_CONFIG) is merged over it key by key, so a fork never
edits the project's own files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from builder.model import safe
from builder.model.errors import FactoryError
from builder.model.loading import describe_validation_error, read_yaml

CONFIG_FILE = "factory.yaml"
CONFIG_ENV = "HJK_CONFIG"

SUPPORTED_PLATFORMS = ("linux/amd64", "linux/arm64")


def check_platform(value: str) -> str:
    if value not in SUPPORTED_PLATFORMS:
        raise ValueError(f"unsupported platform '{value}' (expected one of {', '.join(SUPPORTED_PLATFORMS)})")
    return value


Platform = Annotated[str, AfterValidator(check_platform)]


def arch_of(platform: str) -> str:
    """'linux/arm64' -> 'arm64': Debian's and Docker's TARGETARCH names agree for ours."""
    return platform.split("/")[1]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RootBootstrap(Strict):
    """A minimal Debian root made from packages with mmdebstrap, for hosts that can't pull."""

    suite: str = "trixie"
    mirror: str = "http://deb.debian.org/debian"
    packages: list[str] = Field(default_factory=list)
    repository: str = "root"


class RootConfig(Strict):
    """Where the variants' root OS image comes from: bootstrapped, or an ordinary reference."""

    source: Literal["bootstrap", "reference"] = "bootstrap"
    reference: str | None = None
    bootstrap: RootBootstrap = Field(default_factory=RootBootstrap)

    @model_validator(mode="after")
    def _reference_given(self) -> RootConfig:
        if self.source == "reference" and not self.reference:
            raise ValueError("source 'reference' needs root.reference (e.g. debian:trixie-slim)")
        return self


class EmbeddedRegistryConfig(Strict):
    port: int = Field(5000, ge=1, le=65535)


TAG_PLACEHOLDERS = ("variant", "version", "date", "sha")
_TAG_SAMPLE = {"variant": "base", "version": "1.2.3", "date": "20260101", "sha": "0123abc"}
_TAG_CHARACTERS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def check_tag_template(template: str) -> str:
    """Only the known placeholders, each bare, and an OCI tag once filled in: caught when the
    config loads, not at publish after a full build and test."""
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"tag template '{template}' is malformed ({exc})") from None
    fields = [f for f, _, _ in parsed]
    unknown = sorted({f for f in fields if f not in TAG_PLACEHOLDERS})
    if unknown:
        raise ValueError(f"tag template '{template}' uses {{{unknown[0]}}}; "
                         f"the placeholders are {', '.join('{' + p + '}' for p in TAG_PLACEHOLDERS)}")
    if any(spec or conv for _, spec, conv in parsed):
        raise ValueError(f"tag template '{template}': placeholders take no format spec or conversion")
    if "variant" not in fields:
        raise ValueError(f"tag template '{template}' lacks {{variant}}: every variant would write the same tag")
    filled = template.format(**_TAG_SAMPLE)
    if not _TAG_CHARACTERS.match(filled):
        raise ValueError(f"tag template '{template}' gives '{filled}', not an OCI tag "
                         "([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters)")
    return template


TagTemplate = Annotated[str, AfterValidator(check_tag_template)]


class TagScheme(Strict):
    """Tags published per variant. Placeholders: {variant} {version} {date} {sha}."""

    moving: list[TagTemplate] = Field(default_factory=lambda: ["{variant}"])
    latest_variant: str | None = "base"
    """This variant also gets `latest`."""
    date: TagTemplate | None = "{variant}-{date}"
    version: TagTemplate | None = "{variant}-{version}"
    """Immutable; only when a release version is given (--version or a git tag images/vX.Y.Z)."""
    sha: TagTemplate | None = "{variant}-sha-{sha}"
    """Immutable: the git commit the images were built from."""


class LanguageSources(Strict):
    """Where the version managers download the variants' `languages`: the upstream
    sites by default, or an organisation's mirror (firewalled networks, audit)."""

    python_mirror: str | None = None
    """PYTHON_BUILD_MIRROR_URL: CPython tarballs served by sha256 (python-build's mirror layout)."""
    python_definitions: str | None = None
    """A folder of extra python-build definitions (an organisation's own builds), searched before pyenv's."""
    node_mirror: str = "https://nodejs.org/dist"
    """nodejs.org's layout: v<version>/node-v<version>-linux-<x64|arm64>.tar.gz beside SHASUMS256.txt."""
    go_mirror: str | None = None
    """GO_BUILD_MIRROR_URL for goenv."""
    rust_dist_server: str | None = None
    """RUSTUP_DIST_SERVER (rustup's default: https://static.rust-lang.org)."""


SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


def parse_size(value: object) -> int:
    """'830MB', '2.2 GB', '600MiB' or a number of bytes -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = SIZE_PATTERN.match(str(value))
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in SIZE_UNITS:
        raise ValueError(f"'{value}' is not a size (e.g. 830MB, 2.2GB, 600MiB, or bytes)")
    return int(float(match.group(1)) * SIZE_UNITS[unit])


Size = Annotated[int, BeforeValidator(parse_size)]


class SizeLimits(Strict):
    compressed: Size | None = None
    """In the registry: the manifest's config and layers."""
    uncompressed: Size | None = None
    """Unpacked in an engine."""


class Budget(SizeLimits):
    """A variant's size budget, for every platform unless `platforms` says otherwise."""

    platforms: dict[Platform, SizeLimits] = Field(default_factory=dict)

    def for_platform(self, platform: str) -> SizeLimits:
        own = self.platforms.get(platform)
        return SizeLimits(
            compressed=own.compressed if own and own.compressed else self.compressed,
            uncompressed=own.uncompressed if own and own.uncompressed else self.uncompressed,
        )


_DURATION = re.compile(r"^(\d+)([hdw])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_duration(text: str) -> dt.timedelta:
    """'36h', '2d', '1w' -> a timedelta; ValueError naming the text otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 36h, 2d or 1w")
    return dt.timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])


class BumpConfig(Strict):
    """How `hjk-images bump` moves pins forward."""

    min_age: str = "2d"
    """How old a release must be before it is taken (a tool's own `min_age` wins): malicious
    npm releases are usually caught and pulled within days."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Name -> tools bumped together (`bump --group NAME`, one pull request per group)."""

    @field_validator("min_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class FeatureConfig(Strict):
    """The agent CLIs as a Dev Container Feature, for images that aren't ours: made from
    a variant's tools (their pins and settings) and published beside the images."""

    id: str = Field(default="agents", pattern=r"^[a-z][a-z0-9-]{0,40}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    """Semver; `bump` moving one of its tools raises the minor."""
    variant: str = "base"
    """The variant whose tools the Feature installs."""
    node: list[str] = Field(default_factory=lambda: ["node", "npm"])
    """Archive tools that give an image without Node >= the pinned major its Node and npm."""
    tools: list[str] = Field(min_length=1)
    """The npm tools (agents) it installs, each with an on/off and a version option."""
    installs_after: list[str] = Field(default_factory=lambda: ["ghcr.io/devcontainers/features/node"])
    """Features ours installs after when a devcontainer.json takes them too (the common Node
    Feature). Clients fetch each named one's metadata, so an offline mirror names its copy."""


class Client(Strict):
    """A program the images are started with in the tests (the Dev Containers CLI): pinned
    here, locked like a tool, installed by `make setup` into .tools/, moved by `bump`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    source: Literal["npm"] = "npm"
    package: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    update: Literal["latest", "minor", "patch", "pinned"] = "latest"
    min_age: str | None = None


_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9a-fA-F:]+\])(?::\d{1,5})?/?"
RepositoryPath = Annotated[str, safe.checked("repository path", "a-z0-9._/-",
                                             rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*",
                                             "lower-case OCI name components joined by /")]
RegistryHost = Annotated[str, safe.checked("registry host", r"A-Za-z0-9.:\[\]/-", _HOST,
                                           "host[:port], e.g. ghcr.io or localhost:5000")]


class FactoryConfig(Strict):
    registry: RegistryHost | None = None
    """Registry host (ghcr.io, localhost:5000...). None: the embedded local registry."""
    namespace: RepositoryPath = "gilmanlab"
    image: RepositoryPath = "headjack"
    platforms: list[Platform] = Field(default_factory=lambda: list(SUPPORTED_PLATFORMS))
    root: RootConfig = Field(default_factory=RootConfig)
    embedded_registry: EmbeddedRegistryConfig = Field(default_factory=lambda: EmbeddedRegistryConfig(port=5000))
    variants_dir: str = "variants"
    ca_bundle: str = "auto"
    """Extra CA certificates for RUN steps that fetch over HTTPS, passed as a build secret:
    `auto` (the host's locally added CAs), `none`, or a PEM file."""
    ca_in_image: bool = False
    """Also install the extra CA into the image (off: it never reaches a layer)."""
    labels: dict[str, str] = Field(default_factory=dict)
    language_sources: LanguageSources = Field(default_factory=LanguageSources)
    tags: TagScheme = Field(default_factory=TagScheme)
    source_url: str = "https://github.com/gilmanlab/headjack-images"
    license: str = "MIT"
    budgets: dict[str, Budget] = Field(default_factory=dict)
    """Variant -> the most its images may weigh; a release over budget stops before publish."""
    bump: BumpConfig = Field(default_factory=BumpConfig)
    feature: FeatureConfig | None = None
    """The agents Feature (README: "Use the agents in your own image"); None: none is made."""
    clients: list[Client] = Field(default_factory=list)
    """Clients the tests start the images with, beside Headjack's own rules."""
    vulnerability_allowlist: str = "vulnerability-allowlist.yaml"
    """Findings the scans accept for now, each with a reason and an expiry."""


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _has_key(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for item in loc:
        in_dict = isinstance(node, dict) and item in node
        in_list = isinstance(node, list) and isinstance(item, int) and item < len(node)
        if in_dict or in_list:
            node = node[item]
        else:
            return False
    return True


def find_project_dir(start: Path | None = None) -> Path:
    """The folder holding factory.yaml: HJK_PROJECT_DIR, else the nearest one upwards."""
    env = os.environ.get("HJK_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    packaged = Path(__file__).resolve().parent.parent
    if (packaged / CONFIG_FILE).is_file():
        return packaged
    raise FactoryError(f"no {CONFIG_FILE} found in {here} or above: run from the project folder")


class Settings(BaseModel):
    """Validated config plus where it came from (files resolve relative to these)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config: FactoryConfig
    project_dir: Path
    overlay_path: Path | None = None

    @property
    def variants_dir(self) -> Path:
        return (self._base_for("variants_dir") / self.config.variants_dir).resolve()

    @property
    def allowlist_path(self) -> Path:
        return (self._base_for("vulnerability_allowlist") / self.config.vulnerability_allowlist).resolve()

    @property
    def templates_dir(self) -> Path:
        return self.project_dir / "dockerfiles"

    @property
    def ca_bundle(self) -> Path | None:
        if self.config.ca_bundle in ("auto", "none"):
            return None
        return (self._base_for("ca_bundle") / self.config.ca_bundle).resolve()

    @property
    def python_definitions(self) -> Path | None:
        folder = self.config.language_sources.python_definitions
        if folder is None:
            return None
        path = (self._base_for("language_sources") / folder).resolve()
        if not path.is_dir():
            raise FactoryError(f"language_sources.python_definitions: {path} is not a folder")
        return path

    def file_declaring(self, key: str) -> Path:
        """The config file whose KEY (dotted: `feature.version`) is in force: the overlay's when
        it sets KEY, else factory.yaml."""
        if self.overlay_path is not None and _has_key(read_yaml(self.overlay_path), tuple(key.split("."))):
            return self.overlay_path
        return self.project_dir / CONFIG_FILE

    def _base_for(self, key: str) -> Path:
        """Relative paths resolve against the file that set them."""
        if self.overlay_path is not None and key in read_yaml(self.overlay_path):
            return self.overlay_path.parent
        return self.project_dir


def load_settings(
    overlay: Path | None = None, project_dir: Path | None = None, overrides: dict[str, Any] | None = None,
) -> Settings:
    """factory.yaml, then the overlay, then command-line overrides, merged and validated."""
    project = project_dir or find_project_dir()
    base_path = project / CONFIG_FILE
    base = read_yaml(base_path)
    if overlay is None and os.environ.get(CONFIG_ENV):
        overlay = Path(os.environ[CONFIG_ENV])
    extra = read_yaml(overlay) if overlay else {}
    merged = _merge(_merge(base, extra), overrides or {})
    try:
        config = FactoryConfig.model_validate(merged)
    except ValidationError as exc:
        first = tuple(exc.errors()[0]["loc"])
        blame = overlay if overlay and _has_key(extra, first) else base_path
        if overrides and _has_key(overrides, first):  # a command-line option or its variable
            blame = Path(f"--{first[0]} (or $HJK_{str(first[0]).upper()})")
        raise FactoryError(describe_validation_error(blame, FactoryConfig, exc)) from None
    overlay_path = overlay.resolve() if overlay else None
    settings = Settings(config=config, project_dir=project, overlay_path=overlay_path)
    bundle = settings.ca_bundle
    if bundle is not None and not bundle.is_file():
        blame = overlay if overlay and "ca_bundle" in extra else base_path
        raise FactoryError(f"{blame}: ca_bundle: {bundle} is not a file (give a PEM file, `auto` or `none`)")
    return settings
