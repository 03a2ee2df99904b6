"""The runner: the stages composed, each taking the previous stage's record.

    variants -> render -> plan -> build (BuildRecord) -> test (TestResults)
             -> publish (ReleaseRecord) -> sign -> SBOM

`build`, `test` and `publish` here are what the CLI's commands of the same names
call (and `make ci-local` calls those commands); `release` (builder.release) runs
these same functions in order, so it can't drift from the single commands. What is
shown to the user goes through an `Observer`: the runner decides, the CLI prints.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from builder.engine import cosign, extra_ca, git, oci, state
from builder.engine import devcontainer as devcontainer_cli
from builder.model import files as project_files
from builder.model.config import Settings, load_settings
from builder.model.errors import FactoryError
from builder.model.graph import Plan, RootImage, RootPins
from builder.model.records import (
    BuildRecord,
    Bump,
    ImageResult,
    PublishedFeature,
    ReleaseRecord,
    TagPlan,
    TestResults,
    save,
)
from builder.model.tools import client_tools
from builder.model.variants import VariantSet
from builder.project import (
    Prepared,
    Project,
    default_record_path,
    default_release_path,
    default_results_path,
    published_digests,
    start_registry,
    variants_of,
)
from builder.stages import budget, feature, lock, provenance, root, sbom, sign, smoke
from builder.stages import build as build_stage
from builder.stages import bump as bump_stage
from builder.stages import pin as pin_stage
from builder.stages import publish as publish_stage


class Observer(Protocol):
    """What the runner tells whoever shows its progress."""

    def note(self, message: str) -> None: ...
    def board(self, plan: Plan) -> AbstractContextManager[build_stage.Listener]: ...
    def built(self, record: BuildRecord, saved: Path) -> None: ...
    def image_tested(self, result: ImageResult) -> None: ...
    def tested(self, results: TestResults, saved: Path, junit: Path | None) -> None: ...
    def published(self, plans: list[TagPlan], release: ReleaseRecord | None,
                  repository: str, saved: Path | None) -> None: ...
    def stage(self, name: str, outcome: str) -> None: ...


def lock_pins(settings: Settings, *, fresh: bool, report: Callable[[str], None]) -> RootPins | None:
    """A bootstrapped root's digests for the lock: the lock's own while the root's inputs
    are unchanged, else made here (FRESH: from the archive as it is now)."""
    if settings.config.root.source != "bootstrap":
        return None
    if not fresh and (pins := lock.root_pins(settings, lock.load(settings))) is not None:
        return pins
    return root.make_pins(settings, fresh=fresh, report=report)


def root_bootstrap(settings: Settings, registry: str, platforms: list[str], observer: Observer) -> RootImage:
    return root.bootstrap(settings, registry, platforms or None, observer.note,
                          lock.root_pins(settings, lock.load(settings)),
                          allow_drift=True)  # making roots is not building on them: drift is told


def root_check(settings: Settings, registry: str, platforms: list[str], observer: Observer) -> list[str]:
    return root.check(settings, registry, platforms or None, observer.note,
                      lock.root_pins(settings, lock.load(settings)))


def merge(records: list[BuildRecord], declared: dict[str, list[str]]) -> BuildRecord:
    """Join per-platform records; where the root was bootstrapped by runners that each held
    one platform, its index is joined here, where every platform meets."""
    merged = build_stage.merge(records, declared)
    wanted = {p for platforms in declared.values() for p in platforms}
    if merged.root.bootstrapped and not merged.root.digest and wanted <= set(merged.root.platforms):
        digest = root.join_root_index(merged.root.reference, merged.root.platforms)
        merged = merged.model_copy(update={"root": merged.root.model_copy(update={"digest": digest})})
    return merged


@dataclass(frozen=True)
class BumpRequest:
    only: list[str] = field(default_factory=list)
    group: str | None = None
    dry_run: bool = False
    """Write nothing (--dry-run and --check)."""
    dockerfiles: list[Path] = field(default_factory=list)
    """Team Dockerfiles whose factory FROM lines move to what the registry's tags hold now."""
    registry: str | None = None


@dataclass(frozen=True)
class BumpOutcome:
    bumps: list[Bump]
    written: list[Path]
    """Variant files changed (the lock too, when any)."""


def bump(project: Project, request: BumpRequest, observer: Observer) -> BumpOutcome:
    """Ask every selected tool's source for its newest allowed release, and the registry what
    the tags a team's Dockerfiles name hold now; unless it is a dry run, write the moves into
    the variant files, the lock and the Dockerfiles, all of them or nothing."""
    settings, variants = project.settings, project.variants
    chosen = bump_stage.selected_tools(variants, request.only, settings.config.bump.groups, request.group,
                                       client_tools(settings.config))
    observer.note(f"asking the sources of {len(chosen)} tool(s)")
    tools = bump_stage.check_all(settings, chosen, dt.datetime.now(dt.UTC))
    pins = pin(project, request.registry, request.dockerfiles, check=True) if request.dockerfiles else []
    bumps = [*tools, *(pin_stage.as_bump(line) for line in pins)]
    if request.dry_run or any(b.unreachable for b in bumps) or not any(b.moves for b in bumps):
        return BumpOutcome(bumps, [])
    written: list[Path] = []
    undos: list[Callable[[], None]] = []
    with project_files.editing(lock.lock_path(settings)):  # the variant files and the lock move together
        try:
            if any(b.moves for b in tools):
                agents = settings.config.feature
                files, undo = bump_stage.apply(variants, tools, settings.file_declaring("clients"),
                                               (settings.file_declaring("feature.version"), agents) if agents else None)
                written += files
                undos.append(undo)
                settings = load_settings(settings.overlay_path, settings.project_dir)  # a client's pin may have moved
                edited = variants_of(settings)  # the edited files must still load
                lock.update(settings, edited, None, lock.root_pins(settings, project.locked), verify_tools=False)
                written.append(lock.lock_path(settings))
            if any(not line.current for line in pins):
                behind = sorted({line.path for line in pins if not line.current})
                undos.append(project_files.write_together(pin_stage.pinned_texts(behind, settings.config.image,
                                                                                  {ln.variant: ln.now for ln in pins})))
                written += behind
        except BaseException:
            for undo in reversed(undos):
                undo()
            raise
    return BumpOutcome(bumps, written)


def build_options(settings: Settings, **overrides: object) -> build_stage.BuildOptions:
    """Options for a build; `created` comes from SOURCE_DATE_EPOCH, else the commit time."""
    revision, epoch = git.revision(settings.project_dir)
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    values: dict[str, object] = {
        "revision": revision, "created": build_stage.created_timestamp(epoch),
        "extra_ca": extra_ca.bundle_path(settings),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_stage.BuildOptions(**values)  # type: ignore[arg-type]


def build(
    settings: Settings, registry: str, prepared: Prepared, options: build_stage.BuildOptions,
    observer: Observer, record_path: Path | None = None, *, check_lock: bool = True,
) -> BuildRecord:
    """Lock the state folder, check the lockfile (unless the caller just did), resolve the
    root, build the plan, save the record (also when builds failed)."""
    with state.exclusive("build", wait=False):  # held from the root on: two runs never interleave
        if check_lock:
            lock.check_before_build(settings, prepared.variants, prepared.locked)
        platforms = sorted({j.platform for j in prepared.plan.jobs})
        if not options.omitted:
            omitted = build_stage.omitted_tools(prepared.variants, prepared.plan, observer.note)
            options = replace(options, omitted=omitted)
        if options.require_all_tools:
            build_stage.require_all_tools(options.omitted)
        root_image = root.resolve_root(settings, registry, platforms, observer.note, prepared.locked,
                                       lock.root_pins(settings, prepared.locked), allow_drift=options.allow_root_drift)
        for pinned in {(j.variant, j.parent, j.pinned_parent) for j in prepared.plan.jobs if j.pinned_parent}:
            observer.note(f"{pinned[0]}: built on {pinned[1]} as its Dockerfile pins it "
                          f"({prepared.plan.repository}@{pinned[2]}), not on {pinned[1]}'s current digest")
        with observer.board(prepared.plan) as listener:
            record = build_stage.build(settings, prepared.plan, root_image, prepared.rendered, registry,
                                       options, listener)
    saved = save(record, record_path or default_record_path())
    if record.interrupted:
        observer.note(f"interrupted: what finished is in {saved}; nothing was indexed")
        raise KeyboardInterrupt
    observer.built(record, saved)
    return record


@dataclass(frozen=True)
class Clients:
    """Who starts the images in the smoke tests, and as which host user the Dev Containers CLI runs."""

    names: tuple[str, ...] = ("headjack",)
    host_user: str | None = None


def test(
    settings: Settings, variants: VariantSet, targets: list[smoke.Target], observer: Observer, *,
    parallel: int = 2, results_path: Path | None = None, junit_path: Path | None = None,
    clients: Clients = Clients(),
) -> TestResults:
    """Smoke-test TARGETS with each client (holding the state folder's test lock); save the
    results (and JUnit XML when asked)."""
    if not targets:
        raise FactoryError("nothing to test: the build record has no built image for that selection")
    options = None
    if "devcontainer" in clients.names:
        options = smoke.ClientOptions(cli=devcontainer_cli.cli_path(settings.project_dir), host_user=clients.host_user)
        observer.note(f"Dev Containers CLI {devcontainer_cli.cli_version(options.cli)}, run as "
                      f"{clients.host_user or 'this user'}")
    observer.note(f"testing {len(targets)} image(s) with {' and '.join(clients.names)}")
    with state.exclusive("test", wait=False):
        results = smoke.run_tests(variants, targets, settings.variants_dir / "checks", parallel=parallel,
                                  on_result=observer.image_tested, clients=clients.names, devcontainer=options)
    saved = save(results, results_path or default_results_path())
    if junit_path:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(smoke.junit_xml(results))
    observer.tested(results, saved, junit_path)
    return results


@dataclass(frozen=True)
class PublishRequest:
    version: str | None = None
    force: bool = False
    dry_run: bool = False
    only: list[str] = field(default_factory=list)
    sign_key: Path | None = None
    with_sbom: bool = True
    release_path: Path | None = None
    allow_over_budget: bool = False
    keyless: bool = False
    """Sign and attest keyless (OIDC: the release workflow) when no key is given."""
    platforms: list[str] = field(default_factory=list)
    """Publish these platforms only (a scoped release of one platform); empty: every declared one."""
    vulnerability_scan: str = ""
    """What scanned the digests before publish, or why nothing did (kept in the release record)."""


def publish(
    settings: Settings, variants: VariantSet, record: BuildRecord, results: TestResults,
    request: PublishRequest, observer: Observer,
) -> ReleaseRecord | None:
    """Check everything, sign and attach SBOMs to the index digests, then move the tags:
    a public tag never points at an unsigned or untested index. None on a dry run."""
    variants.select(request.only)  # unknown names fail here
    wanted = {i.name for i in record.variants if not request.only or i.name in request.only}
    declared = {v.name: [p for p in v.platforms if not request.platforms or p in request.platforms]
                for v in variants if v.name in wanted}
    version = request.version.removeprefix("v") if request.version else git.release_tag_version(settings.project_dir)
    release_path = request.release_path or default_release_path()
    with state.exclusive("publish", wait=False):
        plans = publish_stage.plan_publish(record, results, declared, settings.config.tags, version,
                                           dt.datetime.now(dt.UTC).date(), request.force)
        over = _within_budget(settings, variants, record, set(declared), request.allow_over_budget, observer)
        agents = _agents_feature(settings, variants, record.repository, set(declared))
        if agents is not None:  # a version published with other files, or no CLI to publish it, stops it here
            made, repository = agents
            feature_cli = devcontainer_cli.cli_path(settings.project_dir)
            found = feature.published_digest(made, repository)
            observer.note(f"feature {made.id} {made.version}: " + (f"in {repository} already, the same files"
                                                                    if found else f"to publish to {repository}"))
        if request.dry_run:
            observer.published(plans, None, record.repository, None)
            return None
        signing = request.sign_key is not None or request.keyless
        _sign_and_attest(settings, variants, record, plans, version, request, release_path, observer)
        published = publish_stage.apply(plans, record.repository)
        costs = [cost for v in published if v.previous
                 for cost in publish_stage.pull_costs(v.variant, v.previous, f"{v.repository}@{v.index_digest}")]
        shipped = None
        if agents is not None:
            shipped = _feature_published(feature_cli, *agents, request.sign_key, signing, observer)
        release = ReleaseRecord(
            created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), revision=record.revision,
            version=version, repository=record.repository, over_budget=[str(o) for o in over],
            root_drift=list(record.root.drift), scope=list(request.only),
            test_deviations=[d for d in results.deviations if d.split(" ", 1)[0] in wanted],
            vulnerability_scan=request.vulnerability_scan, feature=shipped, pull_costs=costs,
            variants=[v.model_copy(update={"sizes": {b.platform: b.sizes for b in record.builds_of(v.variant)
                                                     if b.sizes}}) for v in published],
        )
    saved = save(release, release_path)
    observer.published(plans, release, record.repository, saved)
    moved = sum(len(v.moved) for v in release.variants)
    observer.stage("publish", f"{len(plans)} variant(s), {moved} tags moved")
    return release


def _within_budget(settings: Settings, variants: VariantSet, record: BuildRecord, names: set[str],
                   allowed: bool, observer: Observer) -> list[budget.Overrun]:
    """The size budgets' overruns of NAMES: none may pass unless ALLOWED, and then each is told."""
    over = budget.over_budget(settings, variants, record, names)
    if over and not allowed:
        raise FactoryError("over budget, nothing published:\n  " + "\n  ".join(map(str, over)))
    for overrun in over:
        observer.note(f"[yellow]allowed over budget: {overrun}[/]")
    return over


def _sign_and_attest(
    settings: Settings, variants: VariantSet, record: BuildRecord, plans: list[TagPlan], version: str | None,
    request: PublishRequest, release_path: Path, observer: Observer,
) -> None:
    """Sign the indexes, attach their SBOMs and provenance: everything a tag may point at
    carries them before any tag moves."""
    signing = request.sign_key is not None or request.keyless
    how_signed = "keyless (OIDC)" if request.sign_key is None else f"with {request.sign_key.name}"
    if signing:
        for reference in sign.sign_indexes([p.source for p in plans], request.sign_key):
            observer.note(f"signed {reference}")
        observer.stage("sign", f"{len(plans)} indexes and their platform images signed {how_signed}")
    else:
        observer.stage("sign", "[yellow]not signed: no --sign-key or --keyless[/]")
    if request.with_sbom:
        boms = sbom.attach_all(variants, plans, request.sign_key, release_path.parent / "sbom",
                               keyless=request.keyless)
        for outcome in boms:
            observer.note(f"SBOM {outcome.path.name} attached to {outcome.reference} as {outcome.attached_as}")
        how = ", ".join(sorted({b.attached_as for b in boms}))
        observer.stage("sbom", f"{len(boms)} SBOMs attached" + (f" ({how})" if how else ""))
    else:
        observer.stage("sbom", "[yellow]no SBOMs: --no-sbom[/]")
    if signing:
        attested = provenance.attach_all(variants, record, plans, version, request.sign_key,
                                         lock.lock_path(settings), release_path.parent / "provenance")
        observer.stage("provenance", f"{attested} signed SLSA provenance attestations")
    else:
        observer.stage("provenance", "[yellow]no provenance: nothing to sign it with[/]")


def _agents_feature(settings: Settings, variants: VariantSet, image_repository: str,
                    published: set[str]) -> tuple[feature.Feature, str] | None:
    """The agents Feature and where it goes, when this publish includes its variant."""
    config = settings.config.feature
    if config is None or config.variant not in published:
        return None
    made = feature.configured(variants, settings)
    return made, feature.repository_of(image_repository.split("/", 1)[0], settings.config.namespace, made.id)


def _feature_published(cli: str, made: feature.Feature, repository: str, key: Path | None, signing: bool,
                       observer: Observer) -> PublishedFeature:
    shipped = feature.publish(made, repository, cli, key, sign=signing)
    observer.stage("feature", f"{shipped.reference}@{shipped.digest} "
                   + ("published" if shipped.pushed else "unchanged, already published")
                   + (", signed" if signing else ", [yellow]not signed[/]"))
    return shipped


def publish_feature(project: Project, registry: str | None, key: Path | None, keyless: bool,
                    observer: Observer) -> PublishedFeature:
    """The agents Feature alone, published as `publish` does beside its variant's images."""
    settings = project.settings
    made = feature.configured(project.variants, settings)
    target = start_registry(settings, registry)
    repository = feature.repository_of(target, settings.config.namespace, made.id)
    key = key or (None if keyless else local_key(target, observer))
    cli = devcontainer_cli.cli_path(settings.project_dir)
    return _feature_published(cli, made, repository, key, key is not None or keyless, observer)


def local_key(registry: str, observer: Observer) -> Path | None:
    """On a registry of this machine, a release signs with this machine's own key pair (made
    on first use): what it makes can then be verified. Elsewhere: no key (CI signs keyless)."""
    if not oci.loopback(registry):
        return None
    key, public = cosign.local_key_pair(state.subdir("keys"))
    observer.note(f"signing with this machine's key {key} (verify with --key {public})")
    return key


def pin(project: Project, registry: str | None, files: list[Path], *, check: bool) -> list[pin_stage.PinLine]:
    """Each FROM of FILES naming a factory image against what the registry's tag holds now;
    unless CHECK, the files are rewritten with those digests (all of them or none)."""
    texts = {path: path.read_text(encoding="utf-8") for path in files}
    image = project.settings.config.image
    digests = published_digests(project, registry, pin_stage.variants_named(texts, image))
    lines = pin_stage.pin_lines(texts, image, digests)
    if not check:
        project_files.write_together(pin_stage.pinned_texts(files, image, digests))
    return lines
