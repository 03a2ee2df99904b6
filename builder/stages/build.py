"""Run a plan: build each (variant, platform) with buildx in dependency order, in
parallel up to a limit, reuse what the registry already holds, then join each
variant's platforms into one index. Produces the build record.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from builder.engine import buildx, oci, sizes, sources, state
from builder.engine import commands as tools
from builder.model.config import Settings, arch_of
from builder.model.errors import FactoryError
from builder.model.graph import (
    IDENTITY_LABEL,
    Job,
    Plan,
    RootImage,
    cache_tag,
    identity,
    index_tag,
    stage_arg,
    staging_tag,
)
from builder.model.records import BuildRecord, ImageSize, PlatformBuild, RootRecord, VariantIndex
from builder.model.rendered import RenderedVariant, locate_failure
from builder.model.variants import VariantSet

Listener = Callable[[str, str, str], None]
"""(job key, status, detail) -> None: progress events for the live view."""


@dataclass(frozen=True)
class BuildOptions:
    builder: str | None = None
    force: bool = False
    """Ignore reusable images in the registry and build everything selected."""
    no_cache: bool = False
    """Also ignore the builder's layer cache."""
    max_parallel: int = 2
    revision: str = "unknown"
    version: str = "dev"
    created: str = "1970-01-01T00:00:00Z"
    extra_ca: Path | None = None
    network: str | None = None
    """RUN steps' network (`host` reaches services on this machine's loopback)."""
    omitted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Variant -> the optional tools it leaves out (their downloads can't be reached); every
    variant with optional tools is a key, so the build is told what to leave out."""
    require_all_tools: bool = False
    """Fail before building when an optional tool would be left out (a real release)."""
    allow_root_drift: bool = False
    """Build on a root other than the lock's pin (recorded) instead of refusing."""
    load: dict[str, str] = field(default_factory=dict)
    """Variant -> local tag: built for one platform and loaded into the engine, not pushed
    (the quick local loop for a team's Dockerfile)."""


INLINE_CACHE_KEY = "moby.buildkit.cache.v0"
"""Where BuildKit keeps inline cache metadata in an image config."""


@dataclass(frozen=True)
class LayerCache:
    """What one build imports and exports as layer cache, and the line that says so."""

    imports: list[str]
    export: str | None
    said: str


def created_timestamp(epoch: int | None) -> str:
    moment = dt.datetime.fromtimestamp(epoch or 0, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Executor:
    def __init__(
        self, plan: Plan, root: RootImage, contexts: dict[str, Path],
        options: BuildOptions, logs: Path, listener: Listener,
    ) -> None:
        self.plan = plan
        self.root = root
        self.contexts = contexts
        self.options = options
        self.logs = logs
        self.listener = listener
        self.results: dict[str, PlatformBuild] = {}
        self.separate_cache = False
        """The builder exports a cache of its own (docker-container, remote): else inline."""
        self.rewrite_timestamp = False
        """The builder's BuildKit clamps the layers' times (>= 0.13): layer digests follow from content."""

    def layer_cache(self, job: Job) -> LayerCache:
        """Import the variant's last cache for this platform from the registry when it is there
        and usable; a missing or refused one is said in one line, never a failure."""
        ref = cache_tag(self.plan, job, self.separate_cache)
        export = f"type=registry,ref={ref},mode=max" if self.separate_cache else "type=inline"
        if self.options.no_cache:
            return LayerCache([], export, "no layer cache imported (--no-cache)")
        try:
            found = oci.lookup(ref)
            if found is None:
                return LayerCache([], export, f"no layer cache imported: {ref} not found")
            if not self.separate_cache and INLINE_CACHE_KEY not in oci.raw_config(ref):
                return LayerCache([], export, f"no layer cache imported: {ref} has no inline cache metadata")
        except FactoryError as exc:
            return LayerCache([], export, f"no layer cache imported: {exc}")
        return LayerCache([f"type=registry,ref={ref}"], export, f"layer cache from {ref}")

    def _parent_reference(self, job: Job) -> str:
        if job.pinned_parent:
            return pinned_parent_reference(self.plan.repository, job)
        if job.parent_key is None:
            digest = self.root.platforms.get(job.platform)
            if digest is None:
                raise FactoryError(f"root image {self.root.reference} has no {job.platform} image")
            return f"{oci.repository_of(self.root.reference)}@{digest}"
        parent = self.results[job.parent_key]
        return f"{self.plan.repository}@{parent.digest}"

    def run_job(self, job: Job) -> PlatformBuild:
        start = time.monotonic()
        started_at = _now()
        parent_ref = self._parent_reference(job)
        parent_digest = parent_ref.split("@", 1)[1]
        # earlier Dockerfile stages FROM other variants: pinned to this run's digests
        stages = {stage_arg(v): f"{self.plan.repository}@{self.results[k].digest}"
                  for v, k in zip(job.uses, job.use_keys, strict=True)}
        args = {"BASE_IMAGE": parent_ref, "BASE_DIGEST": parent_digest, **stages}
        omitted = self.options.omitted.get(job.variant, ())
        if job.variant in self.options.omitted:
            args["OMITTED_TOOLS"] = " ".join(omitted)
        # digests are the identity; where they are served from is not
        ident = identity(job, parent_digest, _digests_only(stages), omitted)
        tag = staging_tag(self.plan, job, ident)
        log_path = self.logs / f"{job.variant}-{arch_of(job.platform)}.log"
        local_tag = self.options.load.get(job.variant)
        if not self.options.force and local_tag is None:
            existing = _reusable(tag, job.platform)
            if existing is not None:
                self.listener(job.key, "reused", existing)
                # compressed figures from the registry; layer by layer too when the engine has it
                measured = sizes.measure(f"{self.plan.repository}@{existing}", job.platform, pull=False)
                return PlatformBuild(
                    variant=job.variant, platform=job.platform, status="reused", identity=ident,
                    digest=existing, staging_tag=tag, sizes=measured,
                    context_digest=job.content_hash, omitted_tools=list(omitted), duration_s=time.monotonic() - start,
                )
        cache = self.layer_cache(job)
        self.listener(job.key, "building", cache.said)
        # the docker driver keeps inline cache in the image itself: the cache tag follows it
        cache_tags = [] if local_tag or self.separate_cache else [cache_tag(self.plan, job, False)]
        volatile = {
            "BUILD_CREATED": self.options.created, "BUILD_REVISION": self.options.revision,
            "BUILD_VERSION": self.options.version,
        }
        secrets = [f"id=extra_ca,src={self.options.extra_ca}"] if self.options.extra_ca else []
        outcome = tools.retry_transient(lambda: buildx.buildx_build(
            context=self.contexts[job.variant], dockerfile=self.contexts[job.variant] / "Dockerfile",
            platform=job.platform, tags=[local_tag or tag, *cache_tags], log_path=log_path,
            build_args={**args, **volatile}, labels={IDENTITY_LABEL: ident},
            secrets=secrets, builder=self.options.builder, no_cache=self.options.no_cache,
            network=self.options.network, load=local_tag is not None,
            cache_from=cache.imports, cache_to=None if local_tag else cache.export,
            rewrite_timestamp=self.rewrite_timestamp,
        ))
        digest = outcome.digest
        if local_tag:
            measured = ImageSize(compressed=0, uncompressed=oci.local_image_size(local_tag))
        else:  # the docker driver keeps what it pushed in the engine: every layer can be weighed
            measured = sizes.measure(f"{self.plan.repository}@{digest}", job.platform, pull=False)
        return PlatformBuild(
            variant=job.variant, platform=job.platform, status="built", identity=ident,
            digest=digest, staging_tag=local_tag or tag, sizes=measured,
            context_digest=job.content_hash, omitted_tools=list(omitted), layer_cache=cache.said,
            started_at=started_at, finished_at=_now(),
            duration_s=time.monotonic() - start, log=str(log_path),
        )

    def run(self) -> None:
        """Schedule jobs as their parents finish; a failure skips its descendants."""
        pending = {j.key: j for j in self.plan.jobs}
        running: dict[Future[PlatformBuild], Job] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.max_parallel))
        try:
            while pending or running:
                ready = [
                    j for j in pending.values()
                    if all(key in self.results for key in j.needs)
                ]
                # deeper jobs first keeps each platform's chain moving
                for job in sorted(ready, key=lambda j: (-j.level, j.platform)):
                    if len(running) >= self.options.max_parallel:
                        break
                    del pending[job.key]
                    running[pool.submit(self.run_job, job)] = job
                for job in pending.values():
                    self.listener(job.key, "waiting", "")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    self._finish(job, future, pending)
        except KeyboardInterrupt:
            # stop the running buildx calls; nothing gets indexed, and what was
            # already pushed is reused by the next run
            pool.shutdown(wait=False, cancel_futures=True)
            tools.stop_children()
            raise
        pool.shutdown(wait=True)

    def _finish(self, job: Job, future: Future[PlatformBuild], pending: dict[str, Job]) -> None:
        try:
            result = future.result()
        except Exception as exc:  # any failure of a job fails that job; the run goes on and is recorded
            log_path = self.logs / f"{job.variant}-{arch_of(job.platform)}.log"
            dockerfile = self.contexts[job.variant] / "Dockerfile"
            where = locate_failure(
                exc.output if isinstance(exc, tools.CommandError) else str(exc),
                dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else "",
            )
            error = f"{where}\n{exc}" if where else str(exc)
            result = PlatformBuild(
                variant=job.variant, platform=job.platform, status="failed", log=str(log_path), error=error,
            )
            self.listener(job.key, "failed", error)
            for child in self.plan.descendants(job.key):
                if child.key in pending:
                    del pending[child.key]
                    self.results[child.key] = PlatformBuild(
                        variant=child.variant, platform=child.platform, status="skipped",
                        error=f"{job.key} failed",
                    )
                    self.listener(child.key, "skipped", f"{job.key} failed")
        else:
            if result.status == "built":
                self.listener(job.key, "built", result.digest or "")
        self.results[job.key] = result


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digests_only(stages: dict[str, str]) -> dict[str, str]:
    return {arg: reference.split("@", 1)[1] for arg, reference in stages.items()}


def _reusable(tag: str, platform: str) -> str | None:
    """Digest of the image already pushed under TAG for PLATFORM, if any."""
    try:
        info = oci.inspect(tag)
    except FactoryError:
        return None
    if info.platforms:
        return info.platforms.get(platform)
    return info.digest


def join_indexes(plan: Plan, results: dict[str, PlatformBuild], loaded: Iterable[str] = ()) -> list[VariantIndex]:
    """One index per variant whose every platform succeeded; none for the others, nor for
    variants loaded into the local engine."""
    loaded = set(loaded)
    wanted = [
        VariantIndex(name=variant, platforms=list(platforms),
                     parent=plan.job(f"{variant}/{arch_of(platforms[0])}").parent if platforms else "")
        for variant, platforms in plan.variants.items() if variant not in loaded
    ]
    return join(plan.repository, wanted, results)


def join(repository: str, wanted: list[VariantIndex], results: dict[str, PlatformBuild]) -> list[VariantIndex]:
    """Index each wanted variant from its platform builds (keyed 'variant/arch')."""
    indexes: list[VariantIndex] = []
    for entry in wanted:
        variant, platforms = entry.name, entry.platforms
        builds = [results[key] for p in platforms if (key := f"{variant}/{arch_of(p)}") in results]
        if len(builds) == len(platforms) and all(b.status in ("built", "reused") and b.digest for b in builds):
            tag = index_tag(repository, variant, [b.identity for b in builds])
            sources = [f"{repository}@{b.digest}" for b in builds]
            index = tools.retry_transient(functools.partial(oci.join_index, tag, sources))
            missing = set(platforms) - set(index.platforms)
            if missing:
                raise FactoryError(f"index {tag} lacks {', '.join(sorted(missing))}")
            entry = entry.model_copy(update={"tag": tag, "digest": index.digest})
        indexes.append(entry)
    return indexes


def write_contexts(rendered: dict[str, RenderedVariant], folder: Path) -> dict[str, Path]:
    return {name: r.write(folder / name).parent for name, r in rendered.items()}


def build(
    settings: Settings, plan: Plan, root: RootImage, rendered: dict[str, RenderedVariant],
    registry: str, options: BuildOptions, listener: Listener,
) -> BuildRecord:
    """Run the plan (the caller holds the state folder's build lock)."""
    tools.ensure_docker()
    run_dir = state.subdir("runs", f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    contexts = write_contexts(rendered, run_dir / "contexts")
    logs = state.subdir("logs", "build")
    executor = Executor(plan, root, contexts, options, logs, listener)
    executor.separate_cache = buildx.driver_of(options.builder) != "docker"
    version = buildx.buildkit_version(options.builder)
    executor.rewrite_timestamp = buildx.rewrites_timestamps(version)
    interrupted = False
    try:
        executor.run()
    except KeyboardInterrupt:
        # what finished is recorded; nothing is indexed, and the caller stops the run
        interrupted = True
    builds = [executor.results.get(j.key) or PlatformBuild(
        variant=j.variant, platform=j.platform, status="skipped", error="interrupted") for j in plan.jobs]
    return BuildRecord(
        registry=registry, repository=plan.repository, created=options.created,
        revision=options.revision,
        root=RootRecord(reference=root.reference, digest=root.digest, platforms=root.platforms,
                        bootstrapped=root.bootstrapped, drift=list(root.drift)),
        builds=builds, variants=[] if interrupted else join_indexes(plan, executor.results, options.load),
        interrupted=interrupted, layer_cache="registry (mode=max)" if executor.separate_cache else "inline",
        layer_times=layer_times(version),
    )


def layer_times(version: tuple[int, int] | None) -> str:
    """What the builder does with the times inside the layers it writes, for the record."""
    said = f"BuildKit {version[0]}.{version[1]}" if version else "a BuildKit that doesn't say its version"
    if buildx.rewrites_timestamps(version):
        return (f"rewritten to SOURCE_DATE_EPOCH={buildx.SOURCE_DATE_EPOCH} ({said}): "
                "a layer's digest follows from its files")
    return (f"as each step left them ({said} has no rewrite-timestamp): npm steps settle their own, "
            "the runtime's mount points keep the build's time")


def pinned_parent_reference(repository: str, job: Job) -> str:
    """The platform image of the parent index a team's Dockerfile pins, in this registry."""
    index = f"{repository}@{job.pinned_parent}"
    digest = oci.inspect(index).platforms.get(job.platform)  # fails, naming it, if the pin is gone
    if digest is None:
        raise FactoryError(f"{job.variant}: the pinned parent {index} has no {job.platform} image")
    return f"{repository}@{digest}"


def predict(
    plan: Plan, root_platforms: dict[str, str] | None, omitted: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, str]:
    """What `build` would do per job, without building: 'reuse', or 'build' and why.

    Identities need parent digests, so a job is only known reusable when its
    parent is the root or is itself reusable.
    """
    outcome: dict[str, str] = {}
    digests: dict[str, str] = {}
    for job in sorted(plan.jobs, key=lambda j: j.level):
        parent_digest: str | None
        if job.pinned_parent:
            parent_digest = pinned_parent_reference(plan.repository, job).split("@", 1)[1]
        elif job.parent_key is None:
            parent_digest = (root_platforms or {}).get(job.platform)
        else:
            parent_digest = digests.get(job.parent_key)
        used = {stage_arg(v): digests.get(k, "") for v, k in zip(job.uses, job.use_keys, strict=True)}
        if parent_digest is None or not all(used.values()):
            outcome[job.key] = "build (parent is new)" if job.parent_key else "build (no root yet)"
            continue
        ident = identity(job, parent_digest, used, (omitted or {}).get(job.variant, ()))
        found = _reusable(staging_tag(plan, job, ident), job.platform)
        if found:
            digests[job.key] = found
            outcome[job.key] = "reuse"
        else:
            outcome[job.key] = "build (inputs changed)"
    return outcome


def merge(records: list[BuildRecord], declared: dict[str, list[str]]) -> BuildRecord:
    """Join per-platform build records (one per runner) into indexes.

    Refuses, before writing any index, a variant that lacks a declared platform.
    """
    if not records:
        raise FactoryError("nothing to merge: no build records given")
    first = records[0]
    results: dict[str, PlatformBuild] = {}
    for record in records:
        if record.repository != first.repository:
            raise FactoryError(f"records push to different repositories: {first.repository}, {record.repository}")
        for b in record.builds:
            if b.key in results:
                raise FactoryError(f"{b.variant} {b.platform} is in more than one record")
            results[b.key] = b
    wanted: list[VariantIndex] = []
    for name in dict.fromkeys(v.name for r in records for v in r.variants):
        platforms = declared.get(name)
        if platforms is None:
            raise FactoryError(f"the records hold variant '{name}', which the variant files don't declare")
        have = {b.platform for b in results.values() if b.variant == name and b.status in ("built", "reused")}
        missing = [p for p in platforms if p not in have]
        if missing:
            raise FactoryError(f"refusing to index {name}: no successful build for {', '.join(missing)}")
        parent = next(v.parent for r in records for v in r.variants if v.name == name)
        wanted.append(VariantIndex(name=name, platforms=platforms, parent=parent))
    root_platforms = {p: d for r in records for p, d in r.root.platforms.items()}
    return first.model_copy(update={
        "builds": list(results.values()),
        "variants": join(first.repository, wanted, results),
        "root": first.root.model_copy(update={"platforms": root_platforms}),
    })


def omitted_tools(variants: VariantSet, plan: Plan, report: Callable[[str], None] | None = None,
                  ) -> dict[str, tuple[str, ...]]:
    """Per planned variant with optional tools, those whose download can't be reached from
    here now: the build leaves them out, and its identity and record say so."""
    optional = {v.name: [t for t in v.own_tools if t.optional and t.downloads]
                for v in variants if v.name in plan.variants}
    down = sources.unreachable(d.url for chosen in optional.values() for t in chosen for d in t.downloads.values())
    left_out: dict[str, tuple[str, ...]] = {}
    for name, chosen in optional.items():
        if not chosen:
            continue
        dead = {t.name: [d.url for d in t.downloads.values() if d.url in down] for t in chosen}
        for tool, urls in dead.items():
            if urls and report:
                report(f"{name}: optional tool {tool} left out: {urls[0]} can't be reached from here")
        left_out[name] = tuple(sorted(tool for tool, urls in dead.items() if urls))
    return left_out


def require_all_tools(omitted: dict[str, tuple[str, ...]]) -> None:
    """For a release that must ship every tool: an optional tool left out is an error."""
    if missing := [f"{variant}/{tool}" for variant, tools in omitted.items() for tool in tools]:
        raise FactoryError(f"optional tools can't be fetched, and this build requires every tool: "
                           f"{', '.join(missing)} (is their host reachable from this runner?)")
