"""Variants as data: one YAML file per variant, validated into typed models and
resolved along the parent chain (root -> base -> systemd -> dind -> team variants).

This module knows nothing of Docker or Jinja: it only reads, checks and merges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from builder.model import devcontainer as devcontainer_spec
from builder.model import headjack, safe
from builder.model.config import Budget, Platform, Strict, arch_of
from builder.model.errors import FactoryError
from builder.model.loading import load_model
from builder.model.tools import NAME_PATTERN, Tool

OMITTED_TOOLS_FILE = "/usr/local/share/headjack/omitted-tools"
"""Where an image lists the optional tools its build left out (written by install-archive)."""

ROOT = "root"
"""The parent name that means 'the factory's root OS image'."""

RELEASE_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")

LANGUAGE_MANAGERS = {"python": "pyenv", "node": "nodenv", "go": "goenv", "rust": "rustup"}
"""Each preinstallable language and the version manager (a tool of the parent chain) that installs it."""


class Runtime(Strict):
    """How Headjack must start the image: written into the labels Headjack reads."""

    init: list[str] = Field(default_factory=list)
    """PID 1 (e.g. [/lib/systemd/systemd]); empty: Headjack's default, `sleep infinity`.
    Headjack splits the label on white space, so no argument may hold a space."""
    stop_signal: safe.Signal | None = None
    flags: dict[Literal["docker", "podman", "apple"], str] = Field(default_factory=dict)
    """Headjack's flags label per runtime: space-separated key=value pairs."""
    unprivileged_flags: str | None = None
    """docker: what stands in for privileged=true on hosts that refuse --privileged
    (our own label; Headjack itself never reads it)."""

    @field_validator("init")
    @classmethod
    def _splittable(cls, value: list[str]) -> list[str]:
        for arg in value:
            if not arg or any(ch.isspace() for ch in arg):
                raise ValueError(f"init argument {arg!r} holds white space: Headjack splits the label on it")
        return value

    @field_validator("flags")
    @classmethod
    def _pairs(cls, value: dict[str, str]) -> dict[str, str]:
        for runtime, text in value.items():
            try:
                headjack.check_flags(text)
            except headjack.ContractError as exc:
                raise ValueError(f"{runtime}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _contract(self) -> Runtime:
        if self.init and not ({"docker", "podman"} & set(self.flags)):
            raise ValueError("an image with an init needs flags for docker or podman "
                             "(Headjack would start it with none and it would die)")
        if self.unprivileged_flags is not None:
            headjack.check_flags(self.unprivileged_flags)
            if headjack.parse_flags(self.flags.get("docker", "")).get("privileged") is not True:
                raise ValueError("unprivileged_flags stand in for privileged=true, which flags.docker doesn't ask for")
        return self


class CommandCheck(Strict):
    name: str
    run: str
    user: str | None = None
    """Default: the image's own user."""
    exit_code: int = 0
    expect: str | None = None
    """Regular expression the combined output must match."""
    timeout: int = Field(120, gt=0)
    requires: list[str] = Field(default_factory=list)
    """Optional tools the check needs: where the build left one out, the check is reported
    omitted (with the reason), never passed."""

    @field_validator("expect")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class FileCheck(Strict):
    path: str
    kind: Literal["file", "directory", "any"] = "any"
    owner: str | None = None
    """user:group, e.g. developer:developer."""
    mode: str | None = Field(None, pattern=r"^[0-7]{3,4}$")


class MetadataCheck(Strict):
    user: str | None = None
    workdir: str | None = None
    stop_signal: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class Checks(Strict):
    commands: list[CommandCheck] = Field(default_factory=list)
    files: list[FileCheck] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    metadata: MetadataCheck = Field(default_factory=MetadataCheck)


class Fragments(Strict):
    """Dockerfile fragments (Jinja partials, paths relative to the variant file)
    added at the layout's extension points, so a team never copies a template."""

    root: list[safe.RelativePath] = Field(default_factory=list)
    """As root, before the switch to the image's user."""
    user: list[safe.RelativePath] = Field(default_factory=list)
    """As the image's user, after the switch."""


class Languages(Strict):
    """Language versions preinstalled through the image's own version managers
    (see LANGUAGE_MANAGERS). The first version of each language is the default."""

    python: list[str] = Field(default_factory=list)
    node: list[str] = Field(default_factory=list)
    go: list[str] = Field(default_factory=list)
    rust: list[str] = Field(default_factory=list)

    @field_validator("python", "node", "go", "rust")
    @classmethod
    def _exact_releases(cls, versions: list[str]) -> list[str]:
        for version in versions:
            if not RELEASE_PATTERN.match(str(version)):
                raise ValueError(f"version '{version}' is not an exact release such as 3.12.8")
        if len(set(versions)) != len(versions):
            raise ValueError(f"a version is listed twice in {versions}")
        return versions

    def declared(self) -> dict[str, tuple[str, ...]]:
        """Language -> versions, for the languages that list any."""
        return {name: tuple(getattr(self, name)) for name in LANGUAGE_MANAGERS if getattr(self, name)}


class VariantFile(Strict):
    """What one file in variants/ declares."""

    name: str = Field(pattern=NAME_PATTERN)
    description: safe.Text = ""
    parent: str
    template: str | None = None
    """A Jinja template in dockerfiles/ (usually variant.Dockerfile.j2)..."""
    dockerfile: str | None = None
    """...or a team's own Dockerfile (path relative to this file), whose final FROM names the parent."""
    budget: Budget | None = None
    """The most this variant's images may weigh (factory.yaml's `budgets` may override it)."""
    stage_variants: list[str] = Field(default_factory=list)
    """`dockerfile` only: the other factory variants its earlier stages build FROM (each
    pinned to this run's digest, and built first)."""
    pinned_parent: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    """`dockerfile` only: the parent's index digest its final FROM pins (`hjk-images pin`):
    the build stands on that digest, not on the parent's current one."""
    platforms: list[Platform] | None = None
    """Default: the parent's (root: the factory's). A child may not drop a parent's platform."""
    packages: list[safe.DebianPackage] = Field(default_factory=list)
    """Debian packages without a user-facing version (build headers, locales...)."""
    tools: list[Tool] = Field(default_factory=list)
    languages: Languages = Field(default_factory=Languages)
    env: dict[safe.EnvName, safe.Text] = Field(default_factory=dict)
    runtime: Runtime | None = None
    devcontainer: devcontainer_spec.ImageMetadata | None = None
    """This variant's own entry of the `devcontainer.metadata` label (Dev Containers clients
    read it); its ancestors' entries come before it in the label."""
    checks: Checks = Field(default_factory=Checks)
    fragments: Fragments = Field(default_factory=Fragments)
    context_files: safe.RelativePath | None = None
    """A folder (relative to the variant file) copied into the build context as files/."""
    user: safe.UserName = "developer"

    @model_validator(mode="after")
    def _one_build_recipe(self) -> VariantFile:
        if (self.template is None) == (self.dockerfile is None):
            raise ValueError("give exactly one of `template` and `dockerfile`")
        if self.dockerfile is not None and self.languages.declared():
            raise ValueError("`languages` are installed by templates; a `dockerfile` variant installs its own")
        return self

    uid: int = Field(default=1000, ge=1)
    """UID and GID of `user`. The image's USER is the name (not `uid:gid`, with which the
    engine would drop the user's supplementary groups): Dev Containers clients remap
    only a user they find by name in /etc/passwd."""


class Variant(BaseModel):
    """A variant resolved along its parent chain: what it adds plus what it inherits."""

    model_config = ConfigDict(frozen=True)

    file: VariantFile
    path: Path
    lineage: tuple[str, ...]
    """Ancestor names from the top (e.g. ('base', 'systemd')), not including itself."""
    platforms: tuple[str, ...]
    tools: tuple[Tool, ...]
    """Inherited tools first, then its own."""
    languages: dict[str, tuple[str, ...]]
    """Language -> installed versions, inherited ones included; the first is the default."""
    runtime: Runtime
    devcontainer: tuple[devcontainer_spec.ImageMetadata, ...]
    """The `devcontainer.metadata` entries: ancestors' first, then its own."""
    commands: tuple[CommandCheck, ...]
    files: tuple[FileCheck, ...]
    env_checks: dict[str, str]
    metadata: MetadataCheck

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def parent(self) -> str:
        return self.file.parent

    @property
    def own_tools(self) -> tuple[Tool, ...]:
        return tuple(self.file.tools)


# How a smoke test asks each version manager for one version, and what the answer must say.
_LANGUAGE_PROBES = {
    # language: (one version through its manager, the default version, what the answer must say)
    "python": ("PYENV_VERSION={v} python --version", "python --version", "^Python {v}$"),
    "node": ("NODENV_VERSION={v} node --version", "node --version", "^v{v}$"),
    "go": ("GOENV_VERSION={v} go version", "go version", "\\bgo{v}\\b"),
    "rust": ("rustc +{v} --version", "rustc --version", "^rustc {v}\\b"),
}


def language_checks(languages: dict[str, tuple[str, ...]]) -> tuple[CommandCheck, ...]:
    """Every installed version answers through its manager, and the first is the default."""
    checks: list[CommandCheck] = []
    for language, versions in languages.items():
        manager = LANGUAGE_MANAGERS[language]
        probe, default_probe, expect = _LANGUAGE_PROBES[language]
        for version in versions:
            checks.append(CommandCheck(name=f"{language} {version} through {manager}", run=probe.format(v=version),
                                       expect=expect.format(v=re.escape(version)), timeout=300))
        default = versions[0]
        checks.append(CommandCheck(name=f"{language} {default} is the default", run=default_probe,
                                   expect=expect.format(v=re.escape(default)), timeout=300))
    return tuple(checks)


def _merge_unique(inherited: Iterable[Tool], own: Iterable[Tool]) -> tuple[Tool, ...]:
    """Inherited tools first; a child's tool of the same name replaces the parent's."""
    merged: dict[str, Tool] = {t.name: t for t in inherited}
    for tool in own:
        merged[tool.name] = tool
    return tuple(merged.values())


class VariantSet:
    """Every variant of a project, resolved and in dependency order."""

    def __init__(self, variants: dict[str, Variant]) -> None:
        self._variants = variants

    def __iter__(self) -> Iterator[Variant]:
        return iter(self._variants.values())

    def __contains__(self, name: object) -> bool:
        return name in self._variants

    def __getitem__(self, name: str) -> Variant:
        try:
            return self._variants[name]
        except KeyError:
            known = ", ".join(self._variants) or "none"
            raise FactoryError(f"no variant named '{name}' (known: {known})") from None

    @property
    def names(self) -> list[str]:
        return list(self._variants)

    def descendants_of(self, name: str) -> list[Variant]:
        return [v for v in self._variants.values() if name in v.lineage]

    def select(self, names: Iterable[str]) -> list[Variant]:
        """The named variants in dependency order (all of them when none is named)."""
        wanted = list(names)
        for name in wanted:
            self[name]  # raises for an unknown name
        return [v for v in self._variants.values() if not wanted or v.name in wanted]


def load_variant_files(folder: Path) -> dict[str, tuple[VariantFile, Path]]:
    if not folder.is_dir():
        raise FactoryError(f"{folder}: variants folder not found")
    files: dict[str, tuple[VariantFile, Path]] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        variant = load_model(path, VariantFile)
        if variant.name in files:
            raise FactoryError(
                f"{path}: name: duplicate variant '{variant.name}' (also in {files[variant.name][1]})"
            )
        files[variant.name] = (variant, path)
    if not files:
        raise FactoryError(f"{folder}: no variant files (*.yaml)")
    return files


def _lineage_names(files: dict[str, tuple[VariantFile, Path]], name: str) -> set[str]:
    """NAME's ancestors by name (as far as the files go)."""
    found: set[str] = set()
    current = files[name][0].parent
    while current in files and current not in found:
        found.add(current)
        current = files[current][0].parent
    return found


def resolve(files: dict[str, tuple[VariantFile, Path]], root_platforms: list[str]) -> VariantSet:
    """Every variant file resolved along its parent chain, parents first."""
    resolved: dict[str, Variant] = {}

    def visit(name: str, chain: tuple[str, ...]) -> Variant:
        if name in resolved:
            return resolved[name]
        spec, path = files[name]
        if spec.parent in chain or spec.parent == name:
            cycle = " -> ".join((*chain, name, spec.parent))
            raise FactoryError(f"{path}: parent: cycle of parents ({cycle})")
        if spec.parent == ROOT:
            parent = None
        elif spec.parent in files:
            parent = visit(spec.parent, (*chain, name))
        else:
            known = ", ".join([ROOT, *files])
            raise FactoryError(f"{path}: parent: no variant named '{spec.parent}' (known: {known})")
        platforms = _platforms(spec, path, parent, root_platforms)
        _check_stage_variants(files, name, spec, path)
        resolved[name] = _on_parent(spec, path, parent, platforms)
        return resolved[name]

    for name in files:
        visit(name, ())
    # dependency order: parents before children, stable by file name otherwise
    ordered = sorted(resolved.values(), key=lambda v: (len(v.lineage), v.name))
    return VariantSet({v.name: v for v in ordered})


def _platforms(spec: VariantFile, path: Path, parent: Variant | None, root_platforms: list[str]) -> list[str]:
    """The variant's platforms: its own list or its parent's; a child keeps every one of its parent's."""
    inherited = list(parent.platforms) if parent else list(root_platforms)
    platforms = list(spec.platforms) if spec.platforms is not None else inherited
    dropped = [p for p in inherited if p not in platforms]
    if dropped:
        source = f"parent '{spec.parent}'" if parent else "the factory's platforms"
        raise FactoryError(
            f"{path}: platforms: drops {', '.join(dropped)} that {source} builds; "
            "a child must keep every platform of its parent"
        )
    return platforms


def _check_stage_variants(files: dict[str, tuple[VariantFile, Path]], name: str, spec: VariantFile,
                          path: Path) -> None:
    for used in spec.stage_variants:
        if used not in files:
            raise FactoryError(f"{path}: a stage builds FROM variant '{used}', which doesn't exist "
                               f"(known: {', '.join(files)})")
        if used == name or name in _lineage_names(files, used):
            raise FactoryError(f"{path}: a stage builds FROM '{used}', which builds on {name}: a cycle")


def _on_parent(spec: VariantFile, path: Path, parent: Variant | None, platforms: list[str]) -> Variant:
    """The variant SPEC declares, merged over its resolved PARENT (None: on the root), checked."""
    tools = _merge_unique(parent.tools if parent else (), spec.tools)
    lineage = (*parent.lineage, parent.name) if parent else ()
    _check_language_managers(spec, path, tools, lineage)
    _check_archives_cover(spec, path, platforms)
    _check_requires(spec, path, tools)
    inherited_entries = parent.devcontainer if parent else ()
    _check_devcontainer_entry(spec, path, inherited_entries)
    entries = (*inherited_entries, *([spec.devcontainer] if spec.devcontainer else []))
    runtime = spec.runtime or (parent.runtime if parent else Runtime())
    _check_init_survives_clients(path, runtime, entries)
    return Variant(
        file=spec, path=path,
        lineage=lineage,
        platforms=tuple(platforms),
        tools=tools,
        languages=_merge_languages(parent.languages if parent else {}, spec.languages.declared()),
        runtime=runtime,
        devcontainer=entries,
        commands=(*(parent.commands if parent else ()), *spec.checks.commands),
        files=(*(parent.files if parent else ()), *spec.checks.files),
        env_checks={**(parent.env_checks if parent else {}), **spec.checks.env},
        metadata=_merge_metadata(parent.metadata if parent else MetadataCheck(), spec.checks.metadata),
    )


def _check_devcontainer_entry(
    spec: VariantFile, path: Path, inherited: tuple[devcontainer_spec.ImageMetadata, ...],
) -> None:
    """A child adds to its ancestors' entries and never repeats them: the label carries
    theirs already, and a repeated value would hide which layer asks for it."""
    if spec.devcontainer is None:
        return
    before = devcontainer_spec.merged(inherited)
    for key, value in spec.devcontainer.as_json().items():
        if key in before and before[key] == value:
            raise FactoryError(f"{path}: devcontainer.{key}: repeats what an ancestor's entry already says "
                               f"({json.dumps(value)}); leave it out")


def _check_init_survives_clients(
    path: Path, runtime: Runtime, entries: tuple[devcontainer_spec.ImageMetadata, ...],
) -> None:
    """An init image must tell Dev Containers clients to keep its ENTRYPOINT: without
    `overrideCommand: false` they start their own keep-alive shell as PID 1 instead."""
    if runtime.init and devcontainer_spec.merged(entries).get("overrideCommand") is not False:
        raise FactoryError(f"{path}: devcontainer.overrideCommand: an image with an init "
                           f"({' '.join(runtime.init)}) needs `overrideCommand: false`, or Dev Containers "
                           "clients replace its PID 1 with their own shell")


def _check_archives_cover(spec: VariantFile, path: Path, platforms: list[str]) -> None:
    """A tool with per-architecture archives needs one for every platform the variant builds."""
    for index, tool in enumerate(spec.tools):
        if tool.archives and (missing := [p for p in platforms if arch_of(p) not in tool.archives]):
            raise FactoryError(f"{path}: tools[{index}] ({tool.name}): archives: none for {', '.join(missing)}, "
                               "which this variant builds")


def _check_requires(spec: VariantFile, path: Path, tools: tuple[Tool, ...]) -> None:
    """A check may only require an optional tool of the variant's chain."""
    optional = {t.name for t in tools if t.optional}
    for index, check in enumerate(spec.checks.commands):
        for name in check.requires:
            if name not in optional:
                known = ", ".join(sorted(optional)) or "none"
                raise FactoryError(f"{path}: checks.commands[{index}] ({check.name}): requires: '{name}' is not "
                                   f"an optional tool of this variant (optional: {known})")


def _check_language_managers(spec: VariantFile, path: Path, tools: tuple[Tool, ...], lineage: tuple[str, ...]) -> None:
    present = {t.name for t in tools}
    for language in spec.languages.declared():
        manager = LANGUAGE_MANAGERS[language]
        if manager not in present:
            chain = " -> ".join((*lineage, spec.name)) if lineage else spec.name
            raise FactoryError(
                f"{path}: languages.{language}: needs the version manager {manager}, "
                f"which no variant in {chain} installs as a tool"
            )


def _merge_languages(
    inherited: dict[str, tuple[str, ...]], own: dict[str, tuple[str, ...]],
) -> dict[str, tuple[str, ...]]:
    """A child's versions come first (its first is the new default), then the parent's others."""
    merged = dict(inherited)
    for language, versions in own.items():
        merged[language] = (*versions, *(v for v in inherited.get(language, ()) if v not in versions))
    return merged


def _merge_metadata(parent: MetadataCheck, own: MetadataCheck) -> MetadataCheck:
    return MetadataCheck(
        user=own.user or parent.user,
        workdir=own.workdir or parent.workdir,
        stop_signal=own.stop_signal or parent.stop_signal,
        labels={**parent.labels, **own.labels},
    )
