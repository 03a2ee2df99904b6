"""What a command works on, each read once: where its records live, the variant set
(with a team's Dockerfile as one more), the registry, and the prepared selection
(rendered and planned, with the lock) that build, plan and release share."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from builder.engine import git, oci, state
from builder.engine import registry as registries
from builder.model.config import Settings
from builder.model.errors import FactoryError
from builder.model.graph import Plan
from builder.model.loading import load_model
from builder.model.lockfile import Lock
from builder.model.rendered import RenderedVariant
from builder.model.tools import NAME_PATTERN
from builder.model.variants import (
    Checks,
    Variant,
    VariantFile,
    VariantSet,
    load_variant_files,
    resolve,
)
from builder.stages import build as build_stage
from builder.stages import lock, root
from builder.stages.plan import make_plan, repository, with_ancestors
from builder.stages.render import dockerfile_stages, render_all

# --- where records live ----------------------------------------------------------

def default_record_path() -> Path:
    return state.subdir("records") / "build.json"


def default_results_path() -> Path:
    return state.subdir("records") / "test.json"


def default_release_path() -> Path:
    return state.subdir("records") / "release.json"


# --- variants and the registry ------------------------------------------------------

@dataclass(frozen=True)
class TeamDockerfile:
    """--dockerfile PATH --name NAME: a team's own Dockerfile taken through the pipeline as a variant."""

    path: Path
    name: str


def variants_of(settings: Settings, team: TeamDockerfile | None = None) -> VariantSet:
    """The project's variants, plus a team's Dockerfile as one more when one was given."""
    files = load_variant_files(settings.variants_dir)
    for name in settings.config.budgets:
        if name not in files and not (team and team.name == name):
            raise FactoryError(f"budgets.{name}: no variant named '{name}' (known: {', '.join(files)})")
    if team is not None:
        path, name = team.path, team.name
        if not re.fullmatch(NAME_PATTERN, name):
            raise FactoryError(f"--name {name!r}: a variant name is lower-case letters, digits and '-', "
                               "starting with a letter (at most 41 characters)")
        if name in files:
            raise FactoryError(f"--name {name}: a variant of that name already exists")
        checks_file = path.parent / "hjk-checks.yaml"
        checks = load_model(checks_file, Checks) if checks_file.is_file() else Checks()
        stages = dockerfile_stages(path, settings.config.image)
        spec = VariantFile(
            name=name, description=f"{name}, built from {path.name}", dockerfile=path.name,
            parent=stages.parent, stage_variants=stages.uses, checks=checks, pinned_parent=stages.pinned,
        )
        files[name] = (spec, path.parent / f"{name}.yaml")
    return resolve(files, list(settings.config.platforms))


@dataclass(frozen=True)
class Project:
    """What one command works on, each read once and handed down: the settings, the variant
    set (with a team's Dockerfile), the lock, and each variant's rendered context."""

    settings: Settings
    variants: VariantSet
    locked: Lock | None
    """images.lock.yaml, validated; None when the variants have no lock yet."""
    team: TeamDockerfile | None = None
    _rendered: dict[str, RenderedVariant] = field(default_factory=dict, repr=False, compare=False)

    def rendered(self, chosen: list[Variant]) -> dict[str, RenderedVariant]:
        """CHOSEN rendered, each variant once per command (`--changed-since` and the build share it)."""
        missing = [v for v in chosen if v.name not in self._rendered]
        if missing:
            self._rendered.update(render_all(missing, self.settings))
        return {v.name: self._rendered[v.name] for v in chosen}


def load_project(settings: Settings, team: TeamDockerfile | None = None) -> Project:
    return Project(settings, variants_of(settings, team), lock.load(settings), team)


def registry_address(settings: Settings, override: str | None) -> str:
    """The registry a command talks to: --registry, the config's, or the embedded one's address.
    A look-up only: nothing is started."""
    return registries.chosen(settings, override) or registries.embedded(settings).address


def start_registry(settings: Settings, override: str | None) -> str:
    """The registry a pipeline run pushes to, starting the embedded one when none is named."""
    named = registries.chosen(settings, override)
    return named or registries.embedded(settings).up().address


@dataclass(frozen=True)
class Prepared:
    """A selection rendered and planned, with the inputs it came from."""

    project: Project
    rendered: dict[str, RenderedVariant]
    plan: Plan

    @property
    def variants(self) -> VariantSet:
        return self.project.variants

    @property
    def locked(self) -> Lock | None:
        return self.project.locked


def prepare(project: Project, registry: str, variant_names: list[str], platforms: list[str]) -> Prepared:
    """Render the selection (and its ancestors) and plan its builds."""
    chosen = with_ancestors(project.variants, project.variants.select(variant_names))
    rendered = project.rendered(chosen)
    plan = make_plan(chosen, rendered, repository(project.settings, registry), platforms or None)
    return Prepared(project, rendered, plan)


def changed_variants(project: Project, ref: str) -> list[str]:
    """Variants whose rendered build context differs from the one at git REF, plus their children.

    Rendering both sides catches every cause: a variant file, a template, a
    partial, a fragment or a file COPY'd into the image.
    """
    settings = project.settings
    with tempfile.TemporaryDirectory(prefix="hjk-base-") as tmp:
        before_settings = settings.model_copy(update={"project_dir": git.export_tree(settings.project_dir, ref,
                                                                                     Path(tmp))})
        try:
            before_set = variants_of(before_settings)
            before = {n: r.content_hash() for n, r in render_all(list(before_set), before_settings).items()}
        except FactoryError:
            before = {}  # the old tree does not load (no variants yet, say): everything is new
    now_set = project.variants
    now = {name: r.content_hash() for name, r in project.rendered(list(now_set)).items()}
    changed = {name for name, digest in now.items() if before.get(name) != digest}
    for name in list(changed):
        changed.update(v.name for v in now_set.descendants_of(name))
    return [v.name for v in now_set if v.name in changed]


def predict(prepared: Prepared, registry: str) -> dict[str, str]:
    """What a build would do per job, asking the registry; empty when it can't be asked."""
    if not registries.reachable(registry):
        return {}
    settings, plan = prepared.project.settings, prepared.plan
    platforms = sorted({j.platform for j in plan.jobs})
    roots = root.find_roots(settings, registry, platforms, lock.root_pins(settings, prepared.locked))
    return build_stage.predict(plan, roots or None, build_stage.omitted_tools(prepared.variants, plan))


def published_digests(project: Project, registry: str | None, variants: set[str]) -> dict[str, str]:
    """Variant -> the index digest its tag holds in the registry now; an unpublished one is
    an error naming the command that publishes it."""
    repo = repository(project.settings, registry_address(project.settings, registry))
    digests = {}
    for variant in sorted(variants):
        digest = oci.lookup(f"{repo}:{variant}")
        if digest is None:
            raise FactoryError(f"{repo}:{variant} is not published: release it first "
                               f"(`hjk-images release --variant {variant}`)")
        digests[variant] = digest
    return digests
