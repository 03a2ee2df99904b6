"""Records the stages hand each other: the build record (build -> test -> publish),
the test results (test -> publish) and the release record (publish -> users).

Plain JSON on disk, validated on the way in so a hand-edited or truncated file
is refused with its path named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from builder.model import files as project_files
from builder.model.errors import FactoryError

BuildStatus = Literal["built", "reused", "failed", "skipped"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RootRecord(Record):
    reference: str
    digest: str
    platforms: dict[str, str]
    bootstrapped: bool = False
    drift: list[str] = Field(default_factory=list)
    """Each platform root that differs from the lock's pin, built on with --allow-root-drift."""


class LayerSize(Record):
    step: str
    """The Dockerfile step that made the layer (empty when unknown)."""
    compressed: int
    uncompressed: int | None = None


class ImageSize(Record):
    compressed: int
    """The manifest's config and layers, as stored in the registry."""
    uncompressed: int | None = None
    """As unpacked in an engine (None when the image wasn't in the engine)."""
    layers: list[LayerSize] = Field(default_factory=list)
    """Oldest first."""


class Weights(Record):
    """What weighs the most inside an image, largest first, sizes in bytes."""

    debian: list[tuple[str, int]]
    """Debian packages by installed size."""
    npm: list[tuple[str, int]]
    """Global npm packages by size on disk."""
    files: list[tuple[str, int]]
    """Files over the threshold."""


class PlatformBuild(Record):
    variant: str
    platform: str
    status: BuildStatus
    identity: str = ""
    digest: str | None = None
    staging_tag: str | None = None
    sizes: ImageSize | None = None
    context_digest: str | None = None
    """sha256 of the rendered build context (Dockerfile and files) it was built from."""
    layer_cache: str = ""
    """Where its layer cache came from, or why none was imported."""
    omitted_tools: list[str] = Field(default_factory=list)
    """Optional tools left out because their download couldn't be reached (part of the identity)."""
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    log: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.variant}/{self.platform.split('/')[1]}"

    @model_validator(mode="before")
    @classmethod
    def _derived_figures_are_not_stored(cls, data: object) -> object:
        """Records written before `size_bytes` was derived still load."""
        if isinstance(data, dict) and "size_bytes" in data:
            data = {k: v for k, v in data.items() if k != "size_bytes"}
        return data

    @property
    def size_bytes(self) -> int | None:
        """Compressed, in the registry: derived from `sizes`, never kept beside it."""
        return (self.sizes.compressed or None) if self.sizes else None


class VariantIndex(Record):
    name: str
    platforms: list[str]
    """Every platform the variant declares (and this run was asked for)."""
    tag: str | None = None
    digest: str | None = None
    """The joined index; None when any platform failed or was skipped."""
    parent: str


class BuildRecord(Record):
    schema_version: int = 1
    registry: str
    repository: str
    created: str
    revision: str
    root: RootRecord
    builds: list[PlatformBuild]
    variants: list[VariantIndex]
    interrupted: bool = False
    """The run was stopped (Ctrl-C, SIGTERM): what finished is here, nothing was indexed."""
    layer_cache: str = ""
    """How layer cache was exported: 'inline' (the docker driver) or 'registry' (mode=max)."""
    layer_times: str = ""
    """What the builder did with the times inside the layers (rewritten, or as the steps left them)."""

    def count(self, status: str) -> int:
        """How many platform builds ended with STATUS (built, reused, failed, skipped)."""
        return sum(b.status == status for b in self.builds)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(b.status in ("built", "reused") for b in self.builds)

    def variant(self, name: str) -> VariantIndex:
        for v in self.variants:
            if v.name == name:
                return v
        raise FactoryError(f"the build record has no variant '{name}'")

    def builds_of(self, name: str) -> list[PlatformBuild]:
        return [b for b in self.builds if b.variant == name]


Model = TypeVar("Model", bound=Record)


def save(record: Record, path: Path) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    return project_files.write_atomically(path, record.model_dump_json(indent=2) + "\n")


def load(path: Path, model: type[Model]) -> Model:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FactoryError(f"{path}: can't be read ({exc.strerror})") from exc
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise FactoryError(f"{path}: not a valid {model.__name__}: {where}: {first['msg']}") from None


CheckStatus = Literal["passed", "failed", "omitted"]


class CheckOutcome(Record):
    name: str
    kind: str
    status: CheckStatus
    duration_s: float = 0.0
    detail: str = ""


class ImageResult(Record):
    variant: str
    platform: str
    reference: str
    checks: list[CheckOutcome]
    client: Literal["headjack", "devcontainer"] = "headjack"
    """Who started the image: Headjack's label rules, or the Dev Containers CLI."""
    error: str | None = None
    """Set when the image could not be started or checked at all."""
    started_as: list[str] = Field(default_factory=list)
    """The `docker run` arguments Headjack's rules gave (container name and workspace aside),
    or the Dev Containers CLI command."""
    deviation: str | None = None
    """What this host forced to differ from Headjack's start (a refused --privileged), if anything."""
    logs: str | None = None
    """Container logs, kept when something failed."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.status != "failed" for c in self.checks)

    @property
    def verdict(self) -> str:
        """passed, passed with a deviation (started otherwise than its client would: the host
        refused a flag), or failed: a deviation is never shown as a plain pass."""
        if not self.passed:
            return "failed"
        return "passed with a deviation" if self.deviation else "passed"


class TestResults(Record):
    __test__ = False  # not a pytest class
    schema_version: int = 1
    run_id: str
    images: list[ImageResult]

    @property
    def passed(self) -> bool:
        return bool(self.images) and all(i.passed for i in self.images)

    @property
    def deviations(self) -> list[str]:
        """'variant platform (client): how it was started otherwise' for each deviating image."""
        return [f"{i.variant} {i.platform} ({i.client}): {i.deviation}" for i in self.images if i.deviation]

    def passed_for(self, variant: str, platform: str, reference: str) -> bool:
        """True when REFERENCE was tested and every result recorded for it is a pass:
        an older pass never hides a newer failure."""
        found = [i for i in self.images if i.variant == variant and i.platform == platform
                 and i.reference == reference]
        return bool(found) and all(i.passed for i in found)


def merge_results(parts: list[TestResults]) -> TestResults:
    """Test results of several runs (one per platform runner) as one."""
    return TestResults(run_id="+".join(p.run_id for p in parts), images=[i for p in parts for i in p.images])


class PublishedVariant(Record):
    variant: str
    repository: str
    index_digest: str
    platforms: dict[str, str]
    tags: list[str]
    moved: list[str]
    """Tags that pointed elsewhere (or nowhere) before this publish."""
    previous: str | None = None
    """repository@digest its first tag held before this publish (None: nothing, or the same)."""
    sizes: dict[str, ImageSize] = Field(default_factory=dict)
    """Platform -> what its image weighs (from the build record)."""

    @property
    def pinned(self) -> str:
        return f"{self.repository}:{self.tags[0]}@{self.index_digest}"


class ImageDiff(Record):
    """What a user who has OLD pulls to get NEW (one variant, one platform)."""

    variant: str
    platform: str
    old: str
    new: str
    shared_layers: int
    new_layers: int
    bytes_to_pull: int
    """Compressed: the NEW layers OLD doesn't have."""
    new_bytes: int
    """NEW's compressed total."""
    packages: list[str] = Field(default_factory=list)
    """'debian NAME OLD -> NEW' / 'npm NAME OLD -> NEW', one per package that moved."""


class PublishedFeature(Record):
    """The agents Dev Container Feature as a release left it."""

    id: str
    version: str
    repository: str
    digest: str
    tags: list[str] = Field(default_factory=list)
    """The tags this release wrote (none when the registry held this version already)."""
    pushed: bool
    signed: bool

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.version}"


class StageOutcome(Record):
    """One stage of a release as its table showed it (markup removed)."""

    name: str
    outcome: str


class ReleaseRecord(Record):
    schema_version: int = 1
    created: str
    revision: str
    version: str | None
    repository: str
    variants: list[PublishedVariant]
    over_budget: list[str] = Field(default_factory=list)
    """Budgets broken on purpose (--allow-over-budget), as they were reported."""
    test_deviations: list[str] = Field(default_factory=list)
    """Images tested otherwise than their client starts them (the host refused a flag), as reported."""
    root_drift: list[str] = Field(default_factory=list)
    """Roots other than the lock's pins the images stand on (--allow-root-drift), as reported."""
    scope: list[str] = Field(default_factory=list)
    """The variants a scoped release published (their parents taken as published); empty: every one."""
    vulnerability_scan: str = ""
    """What scanned the published digests, or why nothing did."""
    feature: PublishedFeature | None = None
    """The agents Feature, when this release published its variant."""
    pull_costs: list[ImageDiff] = Field(default_factory=list)
    """Per moved variant and platform: what a user of the image its tag held before pulls."""
    parents: list[str] = Field(default_factory=list)
    """A scoped release: the parent platform images it stood on (repository@digest), taken
    from the registry as published, never built, tested or published by it."""
    stages: list[StageOutcome] = Field(default_factory=list)
    """`release`: every stage in order with its outcome (empty for `publish` alone)."""

    def stage(self, name: str) -> str:
        """The outcome of stage NAME ('' when it didn't run)."""
        return next((s.outcome for s in self.stages if s.name == name), "")


@dataclass(frozen=True)
class TagPlan:
    variant: str
    source: str
    """repository@index-digest to tag."""
    index_digest: str
    platforms: dict[str, str]
    tags: list[str]
    immutable: tuple[str, ...] = ()
    """The tags among TAGS that may never move once written (checked again right before each write)."""
    forced: bool = False


BumpStatus = Literal["bump", "current", "waiting", "pinned", "unchecked", "problem", "error"]
"""'bump', 'current', 'waiting', 'pinned', 'unchecked' (no feed, or it can't be reached),
'problem' (the pin is withdrawn) or 'error' (the source refused)."""


class Bump(Record):
    """One tool's answer from `bump`: where its pin goes, or why it stays."""

    variant: str
    tool: str
    source: str
    current: str
    status: BumpStatus
    target: str | None = None
    released: str = ""
    """The day the chosen (or waiting) release was published."""
    notes: str = ""
    """Where its release notes are."""
    detail: str = ""
    url: str | None = None
    sha256: str | None = None
    archives: dict[str, tuple[str, str]] = Field(default_factory=dict)
    """A per-architecture archive tool: arch -> (url, sha256) of the target release."""
    unreachable: bool = False
    """The source could not be asked at all: nothing may be written."""

    @property
    def moves(self) -> bool:
        return self.target is not None
