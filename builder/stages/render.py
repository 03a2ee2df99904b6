"""Render variants into plain Dockerfiles (plus the files they COPY) with Jinja.

One cached environment with StrictUndefined; the output carries no template
noise and is byte-identical for identical inputs.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel

from builder.model import devcontainer as devcontainer_spec
from builder.model import headjack
from builder.model.config import Settings
from builder.model.dockerfile import FROM_LINE, factory_froms, factory_variant
from builder.model.errors import FactoryError
from builder.model.graph import stage_arg
from builder.model.rendered import RenderedVariant, differs, instruction_words
from builder.model.root_tree import root_tree
from builder.model.variants import ROOT, Runtime, Variant
from builder.stages.templating import double_quoted, environment

LANGUAGE_FILES = "files/languages"
"""Where a variant with `languages` gets the installer (and python-build definitions) in its context."""
LANGUAGE_MOUNT = "/mnt"
"""Where the install steps bind-mount LANGUAGE_FILES: a folder every Debian root has, so the
mount leaves no empty mount point behind in the layer."""

RENDERED_DIR = "rendered"


BUILD_ARG_VALUES = frozenset({"${BUILD_REVISION}", "${BUILD_VERSION}", "${BUILD_CREATED}",
                              "${BASE_IMAGE}", "${BASE_DIGEST}"})
"""Label values that are the pipeline's own build arguments: the only ones that expand."""


def label_quoted(value: str) -> str:
    """A LABEL value: our build-arg references expand; anything else (variant data, JSON with
    `${devcontainerId}` in it) is written literally, `$` included."""
    if value in BUILD_ARG_VALUES:
        return double_quoted(value)
    return double_quoted(value).replace("$", "\\$")


def quoted_labels(labels: dict[str, str]) -> dict[str, str]:
    return {key: label_quoted(value) for key, value in sorted(labels.items())}


def runtime_labels(runtime: Runtime) -> dict[str, str]:
    """Headjack's contract (io.headjack.init and its flags labels), plus our own stand-in
    for --privileged under our own prefix."""
    labels: dict[str, str] = {}
    if runtime.init:
        labels[headjack.INIT_LABEL] = " ".join(runtime.init)  # Headjack splits it on white space
    for name, flags in runtime.flags.items():
        labels[headjack.flags_label(name)] = flags
    if runtime.unprivileged_flags:
        labels[headjack.UNPRIVILEGED_LABEL] = runtime.unprivileged_flags
    return labels


def image_labels(variant: Variant, settings: Settings) -> dict[str, str]:
    cfg = settings.config
    return {
        "org.opencontainers.image.title": f"{cfg.image}:{variant.name}",
        "org.opencontainers.image.description": variant.file.description,
        "org.opencontainers.image.source": cfg.source_url,
        "org.opencontainers.image.licenses": cfg.license,
        "org.opencontainers.image.revision": "${BUILD_REVISION}",
        "org.opencontainers.image.version": "${BUILD_VERSION}",
        "org.opencontainers.image.created": "${BUILD_CREATED}",
        "org.opencontainers.image.base.name": "${BASE_IMAGE}",
        "org.opencontainers.image.base.digest": "${BASE_DIGEST}",
        headjack.VARIANT_LABEL: variant.name,
        **runtime_labels(variant.runtime),
        **({devcontainer_spec.LABEL: devcontainer_spec.label_value(variant.devcontainer)}
           if variant.devcontainer else {}),
        **cfg.labels,
    }


def _context(variant: Variant, settings: Settings) -> dict[str, Any]:
    own = variant.own_tools
    return {
        "variant": variant.file,
        "template_name": variant.file.template,
        "packages": sorted(
            set(variant.file.packages)
            | {t.package_name for t in own if t.source == "apt"}
            | ({"python3-venv"} if any(t.source == "pypi" for t in own) else set())
        ),
        "apt_tools": [t for t in own if t.source == "apt"],
        "other_tools": [t for t in own if t.source != "apt"],
        "tool_env": {k: v for t in own for k, v in t.settings.env.items()},
        "tool_files": sorted((path, text) for t in own for path, text in t.settings.files.items()),
        "env": dict(variant.file.env),
        # what this variant declares itself; a child inherits STOPSIGNAL and CMD from its parent image
        "runtime": variant.file.runtime,
        # Headjack starts PID 1 as the image's USER: an image with an init ends as root
        "pid1_user": "0" if variant.runtime.init else None,
        "labels": quoted_labels(image_labels(variant, settings)),
        "ca_in_image": settings.config.ca_in_image,
        "copy_root_tree": _copies_root_tree(settings, variant),
        "root_tree": ROOT_TREE,
        # a variant on the root has no user yet unless its own steps made one
        "ensure_user": variant.parent == ROOT,
        "languages": language_steps(variant, settings),
        "language_files": LANGUAGE_FILES,
        "language_mount": LANGUAGE_MOUNT,
        "fragments": {
            "root": [_fragment_name(variant, f) for f in variant.file.fragments.root],
            "user": [_fragment_name(variant, f) for f in variant.file.fragments.user],
        },
    }


@dataclass(frozen=True)
class LanguageStep:
    language: str
    versions: tuple[str, ...]
    env: dict[str, str]
    """Download sources for the version manager, from the factory's language_sources."""

    @property
    def env_assignments(self) -> str:
        return " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items()))


def language_steps(variant: Variant, settings: Settings) -> list[LanguageStep]:
    """One install step per language the variant itself declares (a parent's are in its image)."""
    sources = settings.config.language_sources
    env_of: dict[str, dict[str, str | None]] = {
        "python": {
            "PYTHON_BUILD_MIRROR_URL": sources.python_mirror,
            "PYTHON_BUILD_DEFINITIONS": f"{LANGUAGE_MOUNT}/python-build" if sources.python_definitions else None,
        },
        "node": {"NODE_MIRROR": sources.node_mirror},
        "go": {"GO_BUILD_MIRROR_URL": sources.go_mirror},
        "rust": {"RUSTUP_DIST_SERVER": sources.rust_dist_server},
    }
    return [
        LanguageStep(language, versions, {k: v for k, v in env_of[language].items() if v})
        for language, versions in variant.file.languages.declared().items()
    ]


def _language_files(settings: Settings, variant: Variant) -> dict[str, bytes]:
    declared = variant.file.languages.declared()
    if not declared:
        return {}
    installer = settings.templates_dir / LANGUAGE_FILES / "install-language"
    files = {f"{LANGUAGE_FILES}/install-language": installer.read_bytes()}
    definitions = settings.python_definitions if "python" in declared else None
    if definitions is not None:
        files.update({
            f"{LANGUAGE_FILES}/python-build/{p.name}": p.read_bytes()
            for p in sorted(definitions.iterdir()) if p.is_file()
        })
    return files


def _fragment_name(variant: Variant, relative: str) -> str:
    """Template name of a fragment: its path below the variant file's folder."""
    home = variant.path.parent.resolve()
    path = (home / relative).resolve()
    if not path.is_relative_to(home):  # a symlink out of the folder
        raise FactoryError(f"{variant.path}: fragments: {relative} leads outside the variant's folder")
    if not path.is_file():
        raise FactoryError(f"{variant.path}: fragments: {relative} not found")
    return path.relative_to(home).as_posix()


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template logic; end with one newline."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


ROOT_TREE = "files/root"
"""Where the factory's tree sits in the context of a variant on a root named by reference."""


def _copies_root_tree(settings: Settings, variant: Variant) -> bool:
    """A bootstrapped root holds the factory's tree; a root named by reference gets it by COPY."""
    return variant.parent == ROOT and settings.config.root.source == "reference"


def _helper_files(settings: Settings, variant: Variant) -> dict[str, bytes]:
    if not _copies_root_tree(settings, variant):
        return {}
    return {f"{ROOT_TREE}/{item.path}": item.data for item in root_tree(settings.templates_dir)}


def _context_files(settings: Settings, variant: Variant) -> dict[str, bytes]:
    files = {**_helper_files(settings, variant), **_language_files(settings, variant)}
    if variant.file.context_files:
        home = variant.path.parent.resolve()
        folder = (home / variant.file.context_files).resolve()
        if not folder.is_relative_to(home):  # a symlink out of the folder
            raise FactoryError(f"{variant.path}: context_files: {variant.file.context_files} leads outside "
                               "the variant's folder")
        if not folder.is_dir():
            raise FactoryError(f"{variant.path}: context_files: {variant.file.context_files} is not a folder")
    else:
        folder = (settings.templates_dir / "files" / variant.name).resolve()
    if folder.is_dir():
        outside = [p for p in sorted(folder.rglob("*")) if not p.resolve().is_relative_to(folder)]
        if outside:
            raise FactoryError(f"{variant.path}: context_files: {outside[0]} is a link leading outside {folder}")
        files.update({
            f"files/{p.relative_to(folder)}": p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()
        })
    return files




@dataclass(frozen=True)
class DockerfileStages:
    parent: str
    """The variant the final stage builds on."""
    uses: list[str]
    """Other factory variants earlier stages build on."""
    pinned: str | None = None
    """The index digest the final FROM pins the parent to, if it does."""


def dockerfile_stages(path: Path, image: str) -> DockerfileStages:
    """Which factory variants a team's Dockerfile builds on: the final stage's is the parent."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FactoryError(f"{path}: can't be read ({exc.strerror})") from exc
    matches = list(FROM_LINE.finditer(text))
    if not matches:
        raise FactoryError(f"{path}: no FROM line")
    stages: set[str] = set()
    named: list[str | None] = []
    for match in matches:
        ref = match.group("ref")
        named.append(None if ref.lower() in stages or ref == "scratch" else factory_variant(ref, image, path))
        if match.group("stage"):
            stages.add(match.group("stage").lower())
    parent = named[-1]
    if parent is None:
        raise FactoryError(
            f"{path}: the final FROM {matches[-1].group('ref')} is not one of this factory's images "
            f"(expected REGISTRY/NAMESPACE/{image}:<variant>)"
        )
    uses = [v for v in dict.fromkeys(n for n in named if n) if v != parent]
    # the final FROM names the parent (checked above): its pin, read (and checked) the model's way
    final = factory_froms(text, image, path)[-1]
    return DockerfileStages(parent, uses, final.pinned)


def render_dockerfile(variant: Variant, settings: Settings) -> RenderedVariant:
    """A team's own Dockerfile: every FROM naming a factory image is pinned (the parent's to
    BASE_IMAGE, others' to HJK_FROM_<VARIANT>), our labels are added."""
    if variant.file.dockerfile is None:
        raise FactoryError(f"{variant.path}: variant {variant.name} names no Dockerfile")
    path = (variant.path.parent / variant.file.dockerfile).resolve()
    found = dockerfile_stages(path, settings.config.image)
    if found.parent != variant.parent:
        raise FactoryError(f"{path}: FROM names '{found.parent}' but the variant's parent is '{variant.parent}'")
    text = path.read_text(encoding="utf-8")
    stages: set[str] = set()

    def pin(match: re.Match[str]) -> str:
        ref = match.group("ref")
        used = None if ref.lower() in stages or ref == "scratch" else factory_variant(ref, settings.config.image, path)
        if match.group("stage"):
            stages.add(match.group("stage").lower())
        if used is None:
            return match.group(0)
        arg = "BASE_IMAGE" if used == variant.parent else stage_arg(used)
        return f"FROM ${{{arg}}}{match.group('rest')}"

    body = FROM_LINE.sub(pin, text)
    args = "".join(f"ARG {stage_arg(v)}\n" for v in found.uses)
    labels = " \\\n      ".join(f"{k}={v}" for k, v in quoted_labels(image_labels(variant, settings)).items())
    dockerfile = (
        f"# {variant.name}: built by hjk-images from {path.name}; every FROM naming a factory image is pinned.\n"
        "ARG BASE_IMAGE\n" + args + body.rstrip() + "\n\n"
        "ARG BASE_IMAGE\nARG BASE_DIGEST=unknown\nARG BUILD_CREATED=1970-01-01T00:00:00Z\n"
        "ARG BUILD_REVISION=unknown\nARG BUILD_VERSION=dev\n"
        f"LABEL {labels}\n"
    )
    files = {
        str(p.relative_to(path.parent)): p.read_bytes()
        for p in sorted(path.parent.rglob("*"))
        if p.is_file() and p != path and ".git" not in p.relative_to(path.parent).parts
    }
    return RenderedVariant(variant.name, dockerfile, files)


def render_variant(variant: Variant, settings: Settings) -> RenderedVariant:
    if variant.file.dockerfile is not None:
        return render_dockerfile(variant, settings)
    # the variant's own folder comes second: its fragments, never a template override
    env = environment((settings.templates_dir, variant.path.parent.resolve()))
    name = variant.file.template
    assert name is not None  # the model requires a template or a dockerfile
    try:
        template = env.get_template(name)
        context = _context(variant, settings)
        text = _tidy(template.render(**context))
        declared = instruction_words(template.render(**_unbroken(context)))
    except jinja2.TemplateNotFound as exc:
        raise FactoryError(f"{variant.path}: template: '{exc.name}' not found in {settings.templates_dir}") from None
    except jinja2.UndefinedError as exc:
        where = _template_location(exc, name)
        raise FactoryError(f"{where}: {exc.message} (rendering variant {variant.name!r})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise FactoryError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    rendered = RenderedVariant(variant.name, text, _context_files(settings, variant), declared)
    undeclared = rendered.undeclared_instructions()
    if undeclared:  # the models' checks should make this unreachable: a second line of defence
        raise FactoryError(f"{variant.path}: rendering {variant.name!r} gave {undeclared}: a value of the variant "
                           "file became build code; the field it came from needs a stricter type")
    return rendered


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _unbroken(value: Any) -> Any:
    """VALUE (a render context) with every control character in its strings replaced: what
    the template renders when no data value can break a line, so its declared instructions.
    Conditions in the template see the same values, except for such characters."""
    if isinstance(value, str):
        return CONTROL.sub("?", value)
    if isinstance(value, BaseModel):
        return value.model_copy(update={n: _unbroken(getattr(value, n)) for n in type(value).model_fields})
    if isinstance(value, dict):
        return {_unbroken(k): _unbroken(v) for k, v in value.items()}
    if isinstance(value, list) or type(value) is tuple:
        return type(value)(_unbroken(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _unbroken(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


def _template_location(exc: BaseException, fallback: str) -> str:
    """'dockerfiles/x.j2:12' from the innermost template frame of the traceback."""
    tb = exc.__traceback__
    where = fallback
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def render_all(variants: list[Variant], settings: Settings) -> dict[str, RenderedVariant]:
    return {v.name: render_variant(v, settings) for v in variants}


def default_out_dir(settings: Settings) -> Path:
    return settings.project_dir / RENDERED_DIR


def stale(rendered: dict[str, RenderedVariant], target: Path, whole_set: bool) -> list[str]:
    """Variants whose folder under TARGET differs from RENDERED; with the whole set rendered,
    also folders of variants that no longer exist."""
    found = [name for name, r in rendered.items() if differs(r, target / name)]
    if whole_set and target.is_dir():
        found += sorted(p.name for p in target.iterdir() if p.is_dir() and p.name not in rendered)
    return found


def write_all(rendered: dict[str, RenderedVariant], target: Path, prune: bool) -> tuple[list[Path], list[Path]]:
    """Write every context under TARGET; with PRUNE, remove folders of variants that are gone.
    Returns (Dockerfiles written, folders removed)."""
    written = [result.write(target / name) for name, result in rendered.items()]
    removed = []
    if prune:
        for gone in (p for p in target.iterdir() if p.is_dir() and p.name not in rendered):
            shutil.rmtree(gone)
            removed.append(gone)
    return written, removed
