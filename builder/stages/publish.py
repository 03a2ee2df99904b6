"""Publish: move the public tags to tested indexes, all checks first, one step per variant.

Nothing is tagged unless every platform image of the variant passed its smoke
tests and the index holds every platform the variant declares. Immutable tags
(version, git sha) never move to another digest without --force.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from builder.engine import oci
from builder.model.config import TagScheme
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, ImageDiff, PublishedVariant, TagPlan, TestResults

TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def tags_for(
    variant: str, scheme: TagScheme, version: str | None, revision: str, day: dt.date,
) -> tuple[list[str], list[str]]:
    """(all tags, the immutable ones) for VARIANT; invalid tags are refused before anything moves."""
    values = {"variant": variant, "version": version or "", "date": day.strftime("%Y%m%d"), "sha": revision[:7]}
    moving = [t.format(**values) for t in scheme.moving]
    if variant == scheme.latest_variant:
        moving.append("latest")
    if scheme.date:
        moving.append(scheme.date.format(**values))
    immutable = []
    if version and scheme.version:
        immutable.append(scheme.version.format(**values))
    if revision != "unknown" and scheme.sha:
        immutable.append(scheme.sha.format(**values))
    tags = list(dict.fromkeys([*moving, *immutable]))
    for tag in tags:
        if not TAG_PATTERN.match(tag):
            raise FactoryError(
                f"tag '{tag}' for {variant} is not a valid OCI tag "
                "([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters)"
            )
    return tags, immutable


def plan_publish(
    record: BuildRecord, results: TestResults, declared: dict[str, list[str]], scheme: TagScheme,
    version: str | None, day: dt.date, force: bool,
) -> list[TagPlan]:
    """Check everything first; raise naming the image at fault, before any tag moves."""
    plans: list[TagPlan] = []
    for index in record.variants:
        if index.name not in declared:
            continue
        missing = [p for p in declared[index.name] if p not in index.platforms]
        if missing or not index.digest:
            what = f"lacks {', '.join(missing)}" if missing else "was not indexed (a platform failed or was skipped)"
            raise FactoryError(f"refusing to publish {index.name}: its index {what}")
        tested: dict[str, str] = {}
        for build in record.builds_of(index.name):
            reference = f"{record.repository}@{build.digest}"
            if not results.passed_for(index.name, build.platform, reference):
                raise FactoryError(
                    f"refusing to publish {index.name}: {reference} ({build.platform}) has no passing smoke test"
                )
            if build.digest:
                tested[build.platform] = build.digest
        tags, immutable = tags_for(index.name, scheme, version, record.revision, day)
        info = oci.inspect(f"{record.repository}@{index.digest}")
        missing = [p for p in declared[index.name] if p not in info.platforms]
        if missing:
            raise FactoryError(
                f"refusing to publish {index.name}: the index in the registry lacks {', '.join(missing)}"
            )
        for platform in declared[index.name]:
            if info.platforms.get(platform) != tested.get(platform):
                raise FactoryError(
                    f"refusing to publish {index.name}: its index holds {info.platforms.get(platform)} for "
                    f"{platform}, but the image that passed its smoke tests is {tested.get(platform)}"
                )
        for tag in immutable:
            current = _current_digest(f"{record.repository}:{tag}")
            if current and current != index.digest and not force:
                raise FactoryError(
                    f"refusing to move immutable tag {record.repository}:{tag} from {current} to {index.digest} "
                    "(use --force to override)"
                )
        plans.append(TagPlan(index.name, f"{record.repository}@{index.digest}", index.digest,
                             info.platforms, tags, tuple(immutable), force))
    return plans


def _current_digest(reference: str) -> str | None:
    """Where a tag points; None only when the registry says it doesn't exist (any other
    answer stops the publish before a tag moves)."""
    return oci.lookup(reference)


SETTLE_SECONDS = 2.0
"""How long publish waits after writing immutable tags before reading them back: a run that
checked a tag just before this one wrote it, and writes it just after, shows up by then."""


def apply(plans: list[TagPlan], repository: str, settle: float = SETTLE_SECONDS) -> list[PublishedVariant]:
    """Move each tag that isn't right yet, one at a time: imagetools writes the tags of one
    call in parallel, and a registry that dies mid-write can tear every write in flight
    (an empty link file it then answers 500 for), where one at a time tears at most one.

    Immutable tags go first, each checked again right before it is written (signing and
    attesting took minutes since the plan), then read back after a settle (SETTLE seconds at
    least, and twice the slowest tag write): a registry
    has no compare-and-swap, so of two runs writing the same tag at once the one whose
    digest stays wins and the other stops there. Moving tags follow only then."""
    held = {(plan.variant, t): _current_digest(f"{repository}:{t}") for plan in plans for t in plan.tags}
    moved = {plan.variant: [t for t in plan.tags if held[plan.variant, t] != plan.index_digest] for plan in plans}
    # what the variant's first tag held before: the image its users have now
    before = {plan.variant: next((f"{repository}@{d}" for d in [held[plan.variant, plan.tags[0]]]
                                  if d and d != plan.index_digest), None) for plan in plans}
    claimed: list[tuple[TagPlan, str]] = []
    slowest = 0.0
    for plan in plans:
        for tag in (t for t in moved[plan.variant] if t in plan.immutable):
            if not plan.forced:
                current = _current_digest(f"{repository}:{tag}")
                if current is not None and current != plan.index_digest:
                    raise FactoryError(f"refusing to move immutable tag {repository}:{tag}: it was written "
                                       f"({current}) while this publish ran; nothing more is tagged")
                claimed.append((plan, tag))
            started = time.monotonic()
            _write_tag(repository, tag, plan.source)
            slowest = max(slowest, time.monotonic() - started)
    if claimed:
        # another run's write that began before ours landed ends within about one write's time
        # of it: waiting twice the slowest write (at least SETTLE) lets its digest show
        time.sleep(max(settle, 2 * slowest) if settle else 0)
        for plan, tag in claimed:
            current = _current_digest(f"{repository}:{tag}")
            if current != plan.index_digest:
                raise FactoryError(f"immutable tag {repository}:{tag} holds {current}, not this publish's "
                                   f"{plan.index_digest}: another run wrote it at the same time and won; "
                                   "no moving tag was written")
    for plan in plans:
        for tag in (t for t in moved[plan.variant] if t not in plan.immutable):
            _write_tag(repository, tag, plan.source)
    return [PublishedVariant(variant=plan.variant, repository=repository, index_digest=plan.index_digest,
                             platforms=plan.platforms, tags=plan.tags, moved=moved[plan.variant],
                             previous=before[plan.variant])
            for plan in plans]


def pull_costs(variant: str, old: str | None, new: str) -> list[ImageDiff]:
    """Per platform of the index NEW: the layers a user who has the index OLD (None: nothing)
    already holds, and the compressed bytes they pull for the rest."""
    repository = oci.repository_of(new)
    old_platforms = oci.inspect(old).platforms if old else {}
    diffs = []
    for platform, digest in sorted(oci.inspect(new).platforms.items()):
        old_digest = old_platforms.get(platform)
        old_ref = f"{oci.repository_of(old)}@{old_digest}" if old and old_digest else ""
        have = {d for d, _ in oci.layers_of(old_ref)} if old_ref else set()
        layers = oci.layers_of(f"{repository}@{digest}")
        fresh = [(d, size) for d, size in layers if d not in have]
        diffs.append(ImageDiff(
            variant=variant, platform=platform, old=old_ref or "(none)", new=f"{repository}@{digest}",
            shared_layers=len(layers) - len(fresh), new_layers=len(fresh),
            bytes_to_pull=sum(size for _, size in fresh), new_bytes=sum(size for _, size in layers),
        ))
    return diffs


def _write_tag(repository: str, tag: str, source: str) -> None:
    oci.write_tag(f"{repository}:{tag}", source)
