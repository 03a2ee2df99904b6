"""Read-only look-ups for the CLI: what a build would do, what is published, what the
built images weigh and hold, and whether the lock still holds. Nothing here builds,
tags or writes a record."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from builder.engine import contents, oci, sizes
from builder.engine.contents import read_contents
from builder.model import headjack
from builder.model.allowlist import Allowed, load_allowlist
from builder.model.config import Settings, arch_of
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, ImageDiff, PlatformBuild, ReleaseRecord, Weights, load
from builder.model.variants import ROOT
from builder.project import Project, default_release_path, registry_address, start_registry
from builder.stages import feature, lock, root
from builder.stages import publish as publish_stage
from builder.stages.plan import repository


def published_reference(settings: Settings, variant: str, override: str | None) -> str:
    """VARIANT's published image pinned by digest: the last release's (when it published that
    variant to this registry), else what its tag points at now."""
    repo = repository(settings, registry_address(settings, override))
    path = default_release_path()
    if path.is_file():
        release = load(path, ReleaseRecord)
        for published in release.variants:
            if published.variant == variant and published.repository == repo:
                return published.pinned
    tagged = f"{repo}:{variant}"
    try:
        digest = str(oci.inspect(tagged).digest)
    except FactoryError as exc:
        raise FactoryError(f"{tagged} is not published ({exc}); release it, or name an image with --reference") \
            from None
    return f"{tagged}@{digest}"


@dataclass(frozen=True)
class LockCheck:
    stale: lock.Staleness
    root_problems: list[str]
    """A bootstrapped root's pins the registry doesn't hold."""
    registry: str | None
    """Where the root pins were compared; None: offline (the inputs alone)."""


def check_lock(project: Project, registry: str | None, *, offline: bool) -> LockCheck:
    """The lock against the variant files and, unless OFFLINE, against the registries: an
    ordinary root's digest now, a bootstrapped root's pins in REGISTRY (the embedded one
    when none is named)."""
    settings, locked = project.settings, project.locked
    if locked is None:
        raise FactoryError(f"{lock.lock_path(settings)} does not exist: run `hjk-images lock`")
    stale = lock.staleness(settings, project.variants, locked, online=not offline)
    if offline or stale.diff or settings.config.root.source != "bootstrap":
        return LockCheck(stale, [], None if offline else registry)
    where = start_registry(settings, registry)
    return LockCheck(stale, root.pin_problems(settings, where, lock.root_pins(settings, locked)), where)


def sizes_of(record: BuildRecord, variant_names: list[str], platforms: list[str]) -> list[PlatformBuild]:
    """The record's images with their sizes measured now, layer by layer (pulled when the
    engine doesn't hold them)."""
    measured = []
    for b in record.builds:
        if b.digest is None or (variant_names and b.variant not in variant_names) \
                or (platforms and b.platform not in platforms):
            continue
        found = sizes.measure(f"{record.repository}@{b.digest}", b.platform)
        measured.append(b.model_copy(update={"sizes": found}))
    if not measured:
        raise FactoryError("no built image in the record for that selection")
    return measured


def inherited_layers(record: BuildRecord, builds: list[PlatformBuild]) -> dict[str, int]:
    """Build key -> how many of its layers come from its parent (the root's one layer for a
    variant on the root): a child's layers start with its parent's."""
    parents = {v.name: v.parent for v in record.variants}
    layers = {b.key: len(b.sizes.layers) for b in [*record.builds, *builds] if b.sizes and b.sizes.layers}
    # a parent that isn't a built variant (the root) gave the one root layer
    return {b.key: layers.get(f"{parents.get(b.variant, ROOT)}/{arch_of(b.platform)}", 1) for b in builds}


def weights_of(record: BuildRecord, builds: list[PlatformBuild], threshold_mb: int) -> list[Weights]:
    """For each of BUILDS, what weighs the most inside it, read from the image itself."""
    return [contents.weights(f"{record.repository}@{b.digest}", b.platform, threshold_mb=threshold_mb)
            for b in builds]


def debian_versions(record: BuildRecord) -> dict[str, dict[str, str]]:
    """'variant linux/arm64' -> {package: version} as installed in each built image."""
    found = {}
    for b in record.builds:
        if b.digest:
            contents = read_contents(f"{record.repository}@{b.digest}", b.platform)
            found[f"{b.variant} {b.platform}"] = {name: version for name, version, _ in contents.debian}
    return found


def accepted_findings(project: Project, variant: str | None, today: dt.date) -> list[Allowed]:
    """The allow-list's entries for VARIANT (every variant when None), once no entry has
    expired: an expired entry fails, so an accepted finding is looked at again."""
    if variant:
        project.variants.select([variant])  # an unknown name fails here
    path = project.settings.allowlist_path
    allowed = load_allowlist(path)
    expired = allowed.expired(today)
    if expired:
        raise FactoryError(f"{path}: expired allow-list entries (look at them again, then renew or remove): "
                           + ", ".join(f"{e.id} (expired {e.expires})" for e in expired))
    return allowed.for_variant(variant)


def _compared(old: str, new: str) -> list[tuple[str, str, str]]:
    """(variant, old reference, new reference): from two release records (each variant both
    published), or two references."""
    if all(Path(x).suffix == ".json" and Path(x).is_file() for x in (old, new)):
        before = {v.variant: f"{v.repository}@{v.index_digest}" for v in load(Path(old), ReleaseRecord).variants}
        after = {v.variant: f"{v.repository}@{v.index_digest}" for v in load(Path(new), ReleaseRecord).variants}
        common = sorted(set(before) & set(after))
        if not common:
            raise FactoryError(f"{old} and {new} publish no variant in common")
        return [(name, before[name], after[name]) for name in common]
    return [(_variant_of(new) or _tag_of(old) or _tag_of(new) or new.split("@", 1)[0].rsplit("/", 1)[-1], old, new)]


def _tag_of(reference: str) -> str:
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _variant_of(reference: str) -> str:
    """The variant label of REFERENCE's first platform image ('' for an image of no variant):
    a build's staging tag doesn't say which variant it is, the image does."""
    platforms = oci.inspect(reference).platforms
    if not platforms:
        return ""
    labels = json.loads(oci.config_of(f"{oci.repository_of(reference)}@{min(platforms.values())}"))
    return str((labels.get("config") or {}).get("Labels", {}).get(headjack.VARIANT_LABEL) or "")


def _package_moves(old: str, new: str, platform: str) -> list[str]:
    """The Debian and npm packages whose version differs between two platform images."""
    before, after = read_contents(old, platform), read_contents(new, platform)
    moved = []
    for kind, was, now in (("debian", {n: v for n, v, _ in before.debian}, {n: v for n, v, _ in after.debian}),
                           ("npm", {p.name: p.version for p in before.npm}, {p.name: p.version for p in after.npm})):
        for name in sorted(set(was) | set(now)):
            if was.get(name) != now.get(name):
                moved.append(f"{kind} {name} {was.get(name, '(none)')} -> {now.get(name, '(none)')}")
    return moved


def image_diffs(old: str, new: str, *, packages: bool = True) -> list[ImageDiff]:
    """For each variant and platform of NEW: the layers it shares with OLD, the bytes a user
    who has OLD must pull, and (PACKAGES) the packages that moved, read from both images."""
    diffs = []
    for variant, before, after in _compared(old, new):
        for diff in publish_stage.pull_costs(variant, before, after):
            moved = _package_moves(diff.old, diff.new, diff.platform) if packages and diff.old != "(none)" else []
            diffs.append(diff.model_copy(update={"packages": moved}))
    return diffs


def agents_feature(project: Project) -> feature.Feature:
    """The agents Feature the factory config describes, made from its variant's tools."""
    return feature.configured(project.variants, project.settings)
