"""What a command works on, each read once: where its records live, the variant set
(with a team's Dockerfile as one more), the registry, and the prepared selection
(rendered and planned, with the lock) that build, plan and release share."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder.engine import git, state
from builder.engine import registry as registries
from builder.model.config import Settings
from builder.model.errors import FactoryError
from builder.model.graph import Plan
from builder.model.loading import load_model
from builder.model.lockfile import Lock
from builder.model.rendered import RenderedVariant
from builder.model.variants import NAME_PATTERN, Checks, VariantFile, VariantSet, load_variant_files, resolve
from builder.stages import lock
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

def variants_of(settings: Settings) -> VariantSet:
    """The project's variants, plus a team's Dockerfile as one more when one was given."""
    files = load_variant_files(settings.variants_dir)
    for name in settings.config.budgets:
        if name not in files and not (settings.dockerfile_variant and settings.dockerfile_variant[1] == name):
            raise FactoryError(f"budgets.{name}: no variant named '{name}' (known: {', '.join(files)})")
    if settings.dockerfile_variant is not None:
        path, name = settings.dockerfile_variant
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
            parent=stages.parent, stage_variants=stages.uses, checks=checks,
        )
        files[name] = (spec, path.parent / f"{name}.yaml")
    return resolve(files, list(settings.config.platforms))


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
    """A command's inputs, each read once, and what render and plan made of them."""

    variants: VariantSet
    rendered: dict[str, RenderedVariant]
    plan: Plan
    locked: Lock | None
    """images.lock.yaml, validated; None when the variants have no lock yet."""


def prepare(settings: Settings, registry: str, variant_names: list[str], platforms: list[str]) -> Prepared:
    """Render the selection (and its ancestors) and plan its builds."""
    variant_set = variants_of(settings)
    chosen = with_ancestors(variant_set, variant_set.select(variant_names))
    rendered = render_all(chosen, settings)
    plan = make_plan(chosen, rendered, repository(settings, registry), platforms or None)
    return Prepared(variant_set, rendered, plan, lock.load(settings))


def changed_variants(settings: Settings, ref: str) -> list[str]:
    """Variants whose rendered build context differs from the one at git REF, plus their children.

    Rendering both sides catches every cause: a variant file, a template, a
    partial, a fragment or a file COPY'd into the image.
    """
    with tempfile.TemporaryDirectory(prefix="hjk-base-") as tmp:
        before_settings = settings.model_copy(update={"project_dir": git.export_tree(settings.project_dir, ref,
                                                                                     Path(tmp))})
        try:
            before_set = variants_of(before_settings)
            before = {n: r.content_hash() for n, r in render_all(list(before_set), before_settings).items()}
        except FactoryError:
            before = {}  # the old tree does not load (no variants yet, say): everything is new
    now_set = variants_of(settings)
    now = {name: r.content_hash() for name, r in render_all(list(now_set), settings).items()}
    changed = {name for name, digest in now.items() if before.get(name) != digest}
    for name in list(changed):
        changed.update(v.name for v in now_set.descendants_of(name))
    return [v.name for v in now_set if v.name in changed]


