"""Budgets: the most each variant's images may weigh; checked before anything is published."""

from __future__ import annotations

from dataclasses import dataclass

from builder.engine import sizes
from builder.model.config import Budget, Settings
from builder.model.records import BuildRecord, PlatformBuild
from builder.model.variants import VariantSet


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


@dataclass(frozen=True)
class Overrun:
    variant: str
    platform: str
    measure: str
    """compressed or uncompressed."""
    size: int
    budget: int
    biggest: list[str]
    """The three heaviest layers, with their steps."""

    def __str__(self) -> str:
        layers = "; ".join(self.biggest) or "no layer figures"
        return (f"{self.variant} {self.platform} is {_mb(self.size)} {self.measure}, over its budget of "
                f"{_mb(self.budget)} (heaviest layers: {layers})")


def overruns(builds: list[PlatformBuild], budgets: dict[str, Budget]) -> list[Overrun]:
    """Every (variant, platform, measure) over its budget. An unknown figure is never 'within'."""
    found = []
    for b in builds:
        budget = budgets.get(b.variant)
        if budget is None:
            continue
        limits = budget.for_platform(b.platform)
        sizes = b.sizes
        layers = sorted(sizes.layers if sizes else [], key=lambda x: x.uncompressed or x.compressed, reverse=True)
        biggest = [f"{_mb(x.uncompressed or x.compressed)} {x.step[:60] or '?'}" for x in layers[:3]]
        for measure, limit, size in (("compressed", limits.compressed, sizes.compressed if sizes else None),
                                     ("uncompressed", limits.uncompressed, sizes.uncompressed if sizes else None)):
            if limit is None:
                continue
            if size is None:
                found.append(Overrun(b.variant, b.platform, f"{measure} (unmeasured)", 0, limit, biggest))
            elif size > limit:
                found.append(Overrun(b.variant, b.platform, measure, size, limit, biggest))
    return found


def over_budget(settings: Settings, variants: VariantSet, record: BuildRecord,
                variant_names: set[str]) -> list[Overrun]:
    """The budgets the record's images break; figures the record lacks are measured now."""
    budgets = {v.name: v.file.budget for v in variants if v.file.budget}
    budgets.update(settings.config.budgets)
    builds = [b for b in record.builds if b.variant in variant_names and b.variant in budgets and b.digest]
    measured = [b if b.sizes and b.sizes.uncompressed is not None else
                b.model_copy(update={"sizes": sizes.measure(f"{record.repository}@{b.digest}", b.platform)})
                for b in builds]
    return overruns(measured, budgets)
