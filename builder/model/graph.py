"""The build graph (a job per variant and platform, each FROM its parent's image) and
the identity that decides whether a build can be reused. Pure data: the plan stage
makes it, the build stage runs it, the report shows it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from builder.model import headjack
from builder.model.config import arch_of
from builder.model.variants import ROOT

IDENTITY_LABEL = headjack.IDENTITY_LABEL
IDENTITY_SCHEME = "2"


@dataclass(frozen=True)
class Job:
    variant: str
    platform: str
    parent: str
    """Parent variant name, or ROOT."""
    content_hash: str
    level: int
    """Depth in the graph: 0 builds on the root."""
    uses: tuple[str, ...] = ()
    """Other variants an earlier Dockerfile stage builds FROM: built first, pinned by digest."""
    pinned_parent: str | None = None
    """The parent's index digest a team's Dockerfile pins: built on that, not on this run's parent."""

    @property
    def key(self) -> str:
        return f"{self.variant}/{arch_of(self.platform)}"

    @property
    def parent_key(self) -> str | None:
        return None if self.parent == ROOT else f"{self.parent}/{arch_of(self.platform)}"

    @property
    def use_keys(self) -> tuple[str, ...]:
        return tuple(f"{v}/{arch_of(self.platform)}" for v in self.uses)

    @property
    def needs(self) -> tuple[str, ...]:
        """Every job that must have finished before this one starts."""
        return (*([self.parent_key] if self.parent_key and not self.pinned_parent else []), *self.use_keys)


@dataclass(frozen=True)
class Plan:
    repository: str
    """Where images go: REGISTRY/NAMESPACE/IMAGE."""
    jobs: list[Job]
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Variant -> its platforms, in dependency order."""

    def job(self, key: str) -> Job:
        return next(j for j in self.jobs if j.key == key)

    def children(self, key: str) -> list[Job]:
        """Jobs that build on KEY: as their parent, or in an earlier stage."""
        return [j for j in self.jobs if key in j.needs]

    def descendants(self, key: str) -> list[Job]:
        found: list[Job] = []
        frontier = [key]
        while frontier:
            kids = [c for k in frontier for c in self.children(k)]
            found.extend(kids)
            frontier = [c.key for c in kids]
        return found


def stage_arg(variant: str) -> str:
    """The build argument that carries VARIANT's pinned reference to a Dockerfile stage."""
    return "HJK_FROM_" + variant.upper().replace("-", "_")


def identity(job: Job, parent_digest: str, build_args: dict[str, str], omitted: tuple[str, ...] = ()) -> str:
    """What a build is: its rendered context, parent, platform, pinned stages and the
    optional tools it leaves out (an image without one is not the image with it)."""
    payload = {
        "scheme": IDENTITY_SCHEME, "content": job.content_hash, "parent": parent_digest,
        "platform": job.platform, "args": dict(sorted(build_args.items())), "omitted": sorted(omitted),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def staging_tag(plan: Plan, job: Job, build_identity: str) -> str:
    """Per-platform tag a build is pushed under (the docker driver can't push by digest)."""
    return f"{plan.repository}:build-{job.variant}-{arch_of(job.platform)}-{build_identity[:16]}"


def cache_tag(plan: Plan, job: Job, separate: bool) -> str:
    """Where a variant's layer cache for one platform is kept: its last pushed image (inline
    metadata) or, with a builder that exports a SEPARATE cache, a cache manifest of its own."""
    kind = "buildcache" if separate else "cache"
    return f"{plan.repository}:{kind}-{job.variant}-{arch_of(job.platform)}"


def index_tag(repository: str, variant: str, identities: list[str]) -> str:
    """Staging tag of a variant's joined index, named by its platforms' identities."""
    joined = hashlib.sha256("".join(sorted(identities)).encode()).hexdigest()[:16]
    return f"{repository}:build-{variant}-{joined}"


@dataclass(frozen=True)
class RootImage:
    reference: str
    """The index tag, e.g. localhost:5000/gilmanlab/headjack-root:trixie."""
    digest: str
    """The index's digest; empty when this run holds only some platforms (no index joined)."""
    platforms: dict[str, str]
    bootstrapped: bool = False
    """Made by the factory (its index is then ours to join), not an ordinary reference."""
    drift: tuple[str, ...] = ()
    """Each platform root that differs from the lock's pin, built on by choice (--allow-root-drift)."""

    @property
    def pinned(self) -> str:
        return f"{self.reference}@{self.digest}"


@dataclass(frozen=True)
class RootPins:
    """A bootstrapped root as the lock pins it: per platform, its image digest and the
    Debian packages it holds (so a moved digest can say which package moved it)."""

    images: dict[str, str]
    packages: dict[str, dict[str, str]]


def package_moves(before: dict[str, str], after: dict[str, str], shown: int = 8) -> str:
    """Why a root moved: 'libc6 2.41-12 -> 2.41-13; ...' for the packages whose version
    differs (added and removed too); empty when nothing is known of the earlier one."""
    if not before:
        return ""
    moved = [f"{name} {before.get(name, '(none)')} -> {after.get(name, '(none)')}"
             for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    more = f" (and {len(moved) - shown} more)" if len(moved) > shown else ""
    return "; ".join(moved[:shown]) + more if moved else "no package moved"
