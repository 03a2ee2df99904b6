"""Composes the stages: variants -> render -> plan -> build (-> test -> publish).

The CLI calls these; each stage module stays ignorant of the others' internals
and hands on records.
"""

from __future__ import annotations

import datetime as dt
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.engine import commands as tools
from builder.engine import cosign as sign
from builder.engine import extra_ca, oci, state
from builder.model import headjack, records
from builder.model.config import Settings
from builder.model.errors import FactoryError
from builder.model.graph import Plan
from builder.model.loading import load_model
from builder.model.records import BuildRecord
from builder.model.rendered import RenderedVariant
from builder.model.variants import Checks, VariantFile, VariantSet, load_variant_files, resolve
from builder.stages import build as build_mod
from builder.stages import lock, publish, sbom, smoke
from builder.stages import root as rootfs
from builder.stages.plan import make_plan, repository, with_ancestors
from builder.stages.render import dockerfile_parent, render_all


@dataclass(frozen=True)
class Prepared:
    rendered: dict[str, RenderedVariant]
    plan: Plan


def load(settings: Settings) -> VariantSet:
    """The project's variants, plus a team's Dockerfile as one more when one was given."""
    files = load_variant_files(settings.variants_dir)
    if settings.dockerfile_variant is not None:
        path, name = settings.dockerfile_variant
        if name in files:
            raise FactoryError(f"--name {name}: a variant of that name already exists")
        checks_file = path.parent / "hjk-checks.yaml"
        checks = load_model(checks_file, Checks) if checks_file.is_file() else Checks()
        spec = VariantFile(
            name=name, description=f"{name}, built from {path.name}", dockerfile=path.name,
            parent=dockerfile_parent(path, settings.config.image), checks=checks,
        )
        files[name] = (spec, path.parent / f"{name}.yaml")
    return resolve(files, list(settings.config.platforms))


def prepare(
    settings: Settings, registry: str, variant_names: list[str], platforms: list[str],
) -> Prepared:
    variant_set = load(settings)
    chosen = with_ancestors(variant_set, variant_set.select(variant_names))
    rendered = render_all(chosen, settings)
    plan = make_plan(chosen, rendered, repository(settings, registry), platforms or None)
    return Prepared(rendered, plan)


def git_revision(project: Path) -> tuple[str, int | None]:
    """(commit sha, commit time) of the project, or ('unknown', None) outside git."""
    proc = tools.run(["git", "-C", str(project), "log", "-1", "--format=%H %ct"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return "unknown", None
    sha, epoch = proc.stdout.split()
    return sha, int(epoch)


def default_record_path() -> Path:
    return state.subdir("records") / "build.json"


def build_stage(
    settings: Settings, registry: str, prepared: Prepared, options: build_mod.BuildOptions,
    listener: build_mod.Listener, report: Callable[[str], None],
) -> BuildRecord:
    check_lock_before_build(settings, load(settings))
    platforms = sorted({j.platform for j in prepared.plan.jobs})
    root = rootfs.resolve_root(settings, registry, platforms, report, lock.locked_root(settings))
    return build_mod.build(settings, prepared.plan, root, prepared.rendered, registry, options, listener)


def build_options(settings: Settings, **overrides: object) -> build_mod.BuildOptions:
    """Options for a build; `created` comes from SOURCE_DATE_EPOCH, else the commit time."""
    revision, epoch = git_revision(settings.project_dir)
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    values: dict[str, object] = {
        "revision": revision, "created": build_mod.created_timestamp(epoch),
        "extra_ca": extra_ca.bundle_path(settings),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_mod.BuildOptions(**values)  # type: ignore[arg-type]


def save_record(record: BuildRecord, path: Path | None) -> Path:
    return records.save(record, path or default_record_path())


def root_reference(settings: Settings, registry: str) -> str:
    """The root image's tag (bootstrap) or reference, before it is pinned."""
    root = settings.config.root
    if root.source == "bootstrap":
        return f"{rootfs.root_repository(settings, registry)}:{root.bootstrap.suite}"
    assert root.reference is not None
    return root.reference


def default_results_path() -> Path:
    return state.subdir("records") / "test.json"


def test_targets(
    record: BuildRecord, variant_names: list[str], platforms: list[str],
) -> list[smoke.Target]:
    """Every image the record built or reused, narrowed to the asked variants and platforms."""
    root_repo = record.root.reference.split("@", 1)[0].rsplit(":", 1)[0]
    targets = []
    for b in record.builds:
        if variant_names and b.variant not in variant_names:
            continue
        if platforms and b.platform not in platforms:
            continue
        if b.digest is None:
            continue  # failed or skipped builds have nothing to test
        root_digest = record.root.platforms.get(b.platform)
        targets.append(smoke.Target(
            variant=b.variant, platform=b.platform, reference=f"{record.repository}@{b.digest}",
            root_reference=f"{root_repo}@{root_digest}" if root_digest else None,
        ))
    return targets


def image_targets(reference: str, variant: str | None, platforms: list[str]) -> list[smoke.Target]:
    """Targets for any image reference: an index (one per platform) or a single image."""
    info = oci.inspect(reference)
    repo = build_mod.repo_of(reference)
    available = info.platforms or {}
    wanted = platforms or list(available)
    missing = [p for p in wanted if p not in available]
    if missing:
        raise FactoryError(
            f"image {reference} has no image for {', '.join(missing)} (it has: {', '.join(available) or 'none'})"
        )
    targets = []
    for platform in wanted:
        single = f"{repo}@{available[platform]}"
        name = variant or smoke.ImageFacts.of(single, platform).labels.get(headjack.VARIANT_LABEL)
        if not name:
            raise FactoryError(f"image {reference} has no {headjack.VARIANT_LABEL} label: name it with --variant")
        targets.append(smoke.Target(variant=name, platform=platform, reference=single))
    return targets


def release_version(project: Path, explicit: str | None) -> str | None:
    """--version, else a git tag images/vX.Y.Z on HEAD, else none."""
    if explicit:
        return explicit.removeprefix("v")
    proc = tools.run(["git", "-C", str(project), "describe", "--tags", "--exact-match", "--match", "images/v*", "HEAD"],
                     check=False)
    tag = proc.stdout.strip()
    return tag.removeprefix("images/v") if proc.returncode == 0 and tag else None


def default_release_path() -> Path:
    return state.subdir("records") / "release.json"


def publish_stage(
    settings: Settings, record: BuildRecord, results: records.TestResults, *, version: str | None,
    force: bool, dry_run: bool, today: dt.date | None = None, only: list[str] | None = None,
) -> tuple[list[publish.TagPlan], publish.ReleaseRecord | None]:
    variant_set = load(settings)
    wanted = {i.name for i in record.variants if not only or i.name in only}
    variant_set.select(only or [])  # unknown names fail here
    declared = {v.name: list(v.platforms) for v in variant_set if v.name in wanted}
    plans = publish.plan_publish(record, results, declared, settings.config.tags, version,
                                 today or dt.datetime.now(dt.UTC).date(), force)
    if dry_run:
        return plans, None
    published = publish.apply(plans, record.repository)
    release = publish.ReleaseRecord(
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), revision=record.revision,
        version=version, repository=record.repository, variants=published,
    )
    return plans, release


def sign_stage(release: publish.ReleaseRecord, key: Path | None) -> list[str]:
    """Sign every published index (recursively: its platform images too) by digest."""
    signed = []
    for variant in release.variants:
        reference = f"{variant.repository}@{variant.index_digest}"
        sign.sign(reference, key)
        signed.append(reference)
    return signed


@dataclass(frozen=True)
class SbomOutcome:
    variant: str
    platform: str
    reference: str
    path: Path
    attached_as: str


def sbom_stage(settings: Settings, release: publish.ReleaseRecord, key: Path | None, folder: Path) -> list[SbomOutcome]:
    """An SBOM per published platform image: saved under FOLDER and attached in the registry."""
    variant_set = load(settings)
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for published in release.variants:
        variant = variant_set[published.variant]
        for platform, digest in sorted(published.platforms.items()):
            reference = f"{published.repository}@{digest}"
            document = sbom.make_sbom(variant, platform, reference, sbom.read_contents(reference, platform))
            path = folder / f"{published.variant}-{platform.split('/')[1]}.cdx.json"
            path.write_text(document)
            how = sbom.attach(reference, path, key)
            outcomes.append(SbomOutcome(published.variant, platform, reference, path, how))
    return outcomes


def changed_since(settings: Settings, ref: str) -> list[str]:
    """Variants whose rendered build context differs from the one at git REF, plus their children.

    Rendering both sides catches every cause: a variant file, a template, a
    partial, a fragment or a file COPY'd into the image.
    """
    with tempfile.TemporaryDirectory(prefix="hjk-base-") as tmp:
        tree, archive = Path(tmp) / "tree", Path(tmp) / "tree.tar"
        result = tools.run(["git", "-C", str(settings.project_dir), "archive", "--format=tar", "-o", str(archive),
                            ref], check=False)
        if result.returncode != 0:
            raise FactoryError(f"can't read git ref '{ref}': {result.stderr.strip()}")
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        before_settings = settings.model_copy(update={"project_dir": tree})
        try:
            before_set = load(before_settings)
            before = {name: r.content_hash() for name, r in render_all(list(before_set), before_settings).items()}
        except FactoryError:
            before = {}  # the old tree does not load (no variants yet, say): everything is new
    now_set = load(settings)
    now = {name: r.content_hash() for name, r in render_all(list(now_set), settings).items()}
    changed = {name for name, digest in now.items() if before.get(name) != digest}
    for name in list(changed):
        changed.update(v.name for v in now_set.descendants_of(name))
    return [v.name for v in now_set if v.name in changed]


def check_lock_before_build(settings: Settings, variants: VariantSet) -> None:
    stale = lock.stale_tools(settings, variants)
    if stale:
        raise FactoryError(
            f"{lock.lock_path(settings)} is stale for {', '.join(stale)}: run `hjk-images lock` and commit it"
        )


def debian_versions(record: BuildRecord) -> dict[str, dict[str, str]]:
    """'variant linux/arm64' -> {package: version} as installed in each built image."""
    found = {}
    for b in record.builds:
        if b.digest:
            contents = sbom.read_contents(f"{record.repository}@{b.digest}", b.platform)
            found[f"{b.variant} {b.platform}"] = {name: version for name, version, _ in contents.debian}
    return found
