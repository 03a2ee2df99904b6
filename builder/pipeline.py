"""The release: every stage in order, each through `_stage`, which tells the observer its
outcome (or that it failed, and why) and stops at the first failed one.

    registry -> render -> lock -> [parents] -> build -> [signed parents] -> test -> scan
             -> publish (sign, SBOM, provenance, tags)

It calls the runner's `build`, `test` and `publish`, the functions the single commands
call, so the release and the commands can't drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from builder.engine import cosign
from builder.model.allowlist import load_allowlist
from builder.model.config import Settings
from builder.model.errors import FactoryError
from builder.model.graph import Plan
from builder.model.records import BuildRecord, ImageResult, ReleaseRecord, StageOutcome, TagPlan, TestResults, save
from builder.project import Prepared, Project, default_release_path, predict, prepare, start_registry
from builder.runner import Clients, Observer, PublishRequest, build, build_options, local_key, publish, test
from builder.stages import build as build_stage
from builder.stages import lock, sign, smoke


class _StagesKept:
    """Passes everything on to the observer and keeps each stage's outcome for the release record."""

    def __init__(self, inner: Observer) -> None:
        self.inner = inner
        self.kept: list[StageOutcome] = []

    def note(self, message: str) -> None:
        self.inner.note(message)

    def board(self, plan: Plan) -> AbstractContextManager[build_stage.Listener]:
        return self.inner.board(plan)

    def built(self, record: BuildRecord, saved: Path) -> None:
        self.inner.built(record, saved)

    def image_tested(self, result: ImageResult) -> None:
        self.inner.image_tested(result)

    def tested(self, results: TestResults, saved: Path, junit: Path | None) -> None:
        self.inner.tested(results, saved, junit)

    def published(self, plans: list[TagPlan], release: ReleaseRecord | None,
                  repository: str, saved: Path | None) -> None:
        self.inner.published(plans, release, repository, saved)

    def stage(self, name: str, outcome: str) -> None:
        self.kept.append(StageOutcome(name=name, outcome=_MARKUP.sub("", outcome)))
        self.inner.stage(name, outcome)


_MARKUP = re.compile(r"\[(?:/|[a-z][a-z ]*)?\]")
"""The console's style tags ([red]...[/]): the record keeps the words alone."""


class StageFailed(FactoryError):
    """A stage of the release failed (the observer was told which, and why)."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"release stopped at stage '{stage}'")
        self.stage = stage


@dataclass(frozen=True)
class ReleaseRequest:
    registry: str | None = None
    variant_names: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    force: bool = False
    max_parallel: int = 2
    network: str | None = None
    require_all_tools: bool = False
    allow_root_drift: bool = False
    clients: Clients = field(default_factory=Clients)
    publish: PublishRequest = field(default_factory=PublishRequest)


def release(project: Project, request: ReleaseRequest, observer: Observer) -> ReleaseRecord:
    """The main job: registry -> render -> build -> test -> publish (sign, SBOM, provenance), in
    order, each stage's outcome told to the observer; the first failed stage raises StageFailed.

    A release of named variants (`--variant`, or a team's `--dockerfile`) is scoped to them:
    their parents are taken from the registry as published (found at the digest these inputs
    make, and signed), never built, tested or published again; siblings are not touched,
    and `--platform` publishes a one-platform index of the scoped variants alone."""
    settings = project.settings
    scope = [project.team.name] if project.team else list(request.variant_names)
    observer = kept = _StagesKept(observer)
    target = _stage(observer, "registry", lambda: _shown(start_registry(settings, request.registry)))
    # build contexts go to the run's own folder; the committed rendered/ is `render`'s
    prepared = _stage(observer, "render", lambda: _rendered(prepare(project, target, scope, request.platforms)))
    _stage(observer, "lock", lambda: ((), _lock_checked(settings, prepared)))
    if scope:
        _stage(observer, "parents", lambda: ((), _parents_found(prepared, target, scope)))
    options = build_options(settings, force=request.force, max_parallel=request.max_parallel,
                            network=request.network, require_all_tools=request.require_all_tools,
                            allow_root_drift=request.allow_root_drift)
    record = _stage(observer, "build", lambda: _built(build(settings, target, prepared, options, observer,
                                                            check_lock=False)))
    sign_key = request.publish.sign_key or local_key(target, observer)
    if scope:
        _stage(observer, "signed parents", lambda: ((), _parents_signed(
            settings, record, prepared.plan, scope, sign_key, request.publish.keyless)))
    targets = smoke.targets_of(record, scope, [])
    results = _stage(observer, "test", lambda: _passed(test(settings, prepared.variants, targets, observer,
                                                            parallel=request.max_parallel, clients=request.clients)))
    # a malformed allow-list fails here, not in CI
    _stage(observer, "scan", lambda: (load_allowlist(settings.allowlist_path), NO_LOCAL_SCAN))
    # a release publishes what was asked for, like `publish --variant`; ancestors were only built on
    ask = PublishRequest(**{**request.publish.__dict__, "only": scope, "platforms": list(request.platforms),
                            "sign_key": sign_key, "vulnerability_scan": NO_LOCAL_SCAN})
    # publish tells its own stages (sign, sbom, provenance, publish) as it goes
    published = _stage(observer, "publish", lambda: (publish(settings, prepared.variants, record, results, ask,
                                                             observer), None))
    if published is None:  # only a dry run returns nothing, and a release is never one
        raise FactoryError("publish returned no release record")
    parents = [f"{record.repository}@{b.digest}" for b in record.builds
               if scope and b.variant not in scope and b.digest]
    parents += sorted({f"{record.repository}@{j.pinned_parent}" for j in prepared.plan.jobs if j.pinned_parent})
    final = published.model_copy(update={"stages": kept.kept, "parents": parents})
    save(final, request.publish.release_path or default_release_path())
    return final


def _parents_found(prepared: Prepared, registry: str, scope: list[str]) -> str:
    """Every parent job of a scoped release would be reused from the registry: none is built here."""
    predicted = predict(prepared, registry)
    parents = [j for j in prepared.plan.jobs if j.variant not in scope]
    missing = [j for j in parents if predicted.get(j.key) != "reuse"]
    if missing:
        job = missing[0]
        raise FactoryError(
            f"parent {job.variant} ({job.platform}) is not in {registry} as these inputs make it "
            f"({predicted.get(job.key, 'the registry could not be asked')}): a release of {', '.join(scope)} "
            f"never builds its parents; publish it first with `hjk-images release --variant {job.variant}`")
    names = sorted({j.variant for j in parents})
    pinned = sorted({f"{j.parent} at the digest its Dockerfile pins ({j.pinned_parent})"
                     for j in prepared.plan.jobs if j.pinned_parent})
    found = [f"{', '.join(names)} found in the registry, not rebuilt"] if names else []
    return "; ".join([*found, *pinned]) or "on the root"


def _parents_signed(settings: Settings, record: BuildRecord, plan: Plan, scope: list[str], key: Path | None,
                    keyless: bool) -> str:
    """Each parent index a scoped release stands on carries a signature by this factory's key
    (or, keyless, its release workflow's identity): it was published by a release of its own."""
    # each parent platform image this run stood on (a release signs every platform image of
    # an index: a one-platform run joins an index of its own, which nobody signed)
    parents = [(b.variant, b.digest) for b in record.builds if b.variant not in scope and b.digest]
    parents += sorted({(j.parent, j.pinned_parent) for j in plan.jobs if j.pinned_parent})
    public = key.with_suffix(".pub") if key else None
    if public is not None and not public.is_file():
        raise FactoryError(f"a scoped release checks its parents' signatures: put the public key beside {key} "
                           f"({public.name})")
    if public is None and not keyless:
        return f"{len(parents)} parent(s) not checked for a signature: no key to check them with"
    identity = sign.default_identity(settings.config.source_url)
    for name, digest in parents:
        reference = f"{record.repository}@{digest}"
        try:
            sign.verify(reference, public, identity, cosign.GITHUB_OIDC_ISSUER)
        except FactoryError as exc:
            raise FactoryError(f"parent {name} ({reference}) is not signed as published: {exc}; publish it "
                               f"with `hjk-images release --variant {name}`") from None
    return f"{', '.join(sorted({name for name, _ in parents}))} signed" if parents else "on the root"


NO_LOCAL_SCAN = ("not run: a vulnerability scan needs the scanner's database, which a local release does not "
                 "fetch; the release workflow scans the tested digests with Trivy before it publishes")


T = TypeVar("T")


def _shown(address: str) -> tuple[str, str]:
    return address, address


def _lock_checked(settings: Settings, prepared: Prepared) -> str:
    lockfile = lock.lock_path(settings)
    if prepared.locked is None:
        return f"[yellow]no {lockfile.name}: inputs are not pinned (run `hjk-images lock`)[/]"
    lock.check_before_build(settings, prepared.variants, prepared.locked)
    return f"{lockfile.name} current"


def _rendered(prepared: Prepared) -> tuple[Prepared, str]:
    return prepared, f"{len(prepared.rendered)} Dockerfiles, {len(prepared.plan.jobs)} builds planned"


def _built(record: BuildRecord) -> tuple[BuildRecord, str]:
    counts = f"{record.count('built')} built, {record.count('reused')} reused"
    if not record.ok:
        raise FactoryError(f"{counts}; some builds failed")
    return record, counts


def _passed(results: TestResults) -> tuple[TestResults, str]:
    if not results.passed:
        raise FactoryError(f"{len(results.images)} images, some failed their smoke tests")
    deviating = len(results.deviations)
    return results, f"{len(results.images)} images passed" + (
        f" [yellow]({deviating} with a deviation from how their client starts them: see the test table)[/]"
        if deviating else "")


def _stage(observer: Observer, name: str, action: Callable[[], tuple[T, str | None]]) -> T:
    """Run one stage of the release; tell the observer its outcome (when it has one to tell),
    or that it failed and why, then stop the release."""
    try:
        value, outcome = action()
    except FactoryError as exc:
        observer.stage(name, f"[red]FAILED[/]: {exc}")
        raise StageFailed(name) from exc
    if outcome is not None:
        observer.stage(name, outcome)
    return value
