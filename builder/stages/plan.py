"""The build graph: which (variant, platform) builds exist, what each builds FROM,
and the identity that decides whether a build can be reused.

A build's identity hashes everything that shapes its image: the rendered
build context (Dockerfile, files, and so the tool versions written in it), the
parent's digest for that platform, the platform and the build arguments that
change content. Volatile metadata (revision, creation time) is left out so a
new commit with no content change reuses what is there.
"""

from __future__ import annotations

from builder.model.config import Settings
from builder.model.graph import Job, Plan
from builder.model.rendered import RenderedVariant
from builder.model.variants import Variant, VariantSet


def repository(settings: Settings, registry: str) -> str:
    cfg = settings.config
    return f"{registry}/{cfg.namespace}/{cfg.image}"


def with_ancestors(variants: VariantSet, selected: list[Variant]) -> list[Variant]:
    """The selection plus every ancestor it builds on, in dependency order (a team's
    Dockerfile that pins its parent stands on that digest: its lineage isn't built)."""
    wanted: set[str] = set()
    frontier = [v.name for v in selected]
    while frontier:  # ancestors, and what Dockerfile stages use, and theirs
        name = frontier.pop()
        if name in wanted:
            continue
        wanted.add(name)
        variant = variants[name]
        lineage = () if variant.file.pinned_parent else variant.lineage
        frontier.extend((*lineage, *variant.file.stage_variants))
    return [v for v in variants.select([]) if v.name in wanted]


def make_plan(
    variants: list[Variant],
    rendered: dict[str, RenderedVariant],
    registry_repo: str,
    platforms: list[str] | None = None,
) -> Plan:
    jobs: list[Job] = []
    by_variant: dict[str, tuple[str, ...]] = {}
    for variant in variants:
        chosen = tuple(p for p in variant.platforms if not platforms or p in platforms)
        by_variant[variant.name] = chosen
        for platform in chosen:
            jobs.append(Job(
                variant=variant.name, platform=platform, parent=variant.parent,
                content_hash=rendered[variant.name].content_hash(), level=len(variant.lineage),
                uses=tuple(variant.file.stage_variants), pinned_parent=variant.file.pinned_parent,
            ))
    return Plan(repository=registry_repo, jobs=jobs, variants=by_variant)


def plan_document(plan: Plan | None, statuses: dict[str, str]) -> dict[str, object]:
    """The plan as JSON for CI: every job with what it builds on and what a build would do."""
    if plan is None:
        return {"repository": None, "jobs": []}
    return {
        "repository": plan.repository,
        "jobs": [
            {"variant": j.variant, "platform": j.platform, "parent": j.parent, "level": j.level,
             "content_hash": j.content_hash, "action": statuses.get(j.key, "build")}
            for j in plan.jobs
        ],
    }
