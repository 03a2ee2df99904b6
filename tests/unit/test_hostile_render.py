"""Variant data stays data, even past the models' checks: every template rendered with a
line break and an instruction planted in each string that reaches it (the models bypassed)
either keeps the clean render's instruction list, or is refused naming the variant; and
lint refuses a rendered Dockerfile whose instructions differ from the declared ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from builder.model.config import load_settings
from builder.model.errors import FactoryError
from builder.model.rendered import RenderedVariant, instruction_words
from builder.model.variants import Variant
from builder.project import variants_of
from builder.stages import lint
from builder.stages.render import render_variant
from tests.conftest import FIXTURE_CONFIG, load_variants

PLANTED = "\nRUN touch /pwned"
STRUCTURAL = {"parent", "template", "dockerfile", "fragments", "context_files", "source", "platforms",
              "lineage", "stage_variants", "path", "update", "feed", "min_age", "checks", "commands", "files",
              "env_checks", "metadata", "budget"}
"""What decides which template and branch renders (or isn't rendered at all): left alone."""

Path_ = tuple[tuple[str, Any], ...]


def leaves(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """The path of every string (and string key) reachable from VALUE."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name not in STRUCTURAL:
                yield from leaves(getattr(value, name), (*path, ("field", name)))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, ("key", key))
            yield from leaves(item, (*path, ("item", key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, ("item", index)))


def planted(value: Any, path: Path_) -> Any:
    """VALUE with PLANTED appended to the string (or key) at PATH, no model validating it."""
    if not path:
        return value + PLANTED
    (kind, where), rest = path[0], path[1:]
    if isinstance(value, BaseModel):
        return value.model_copy(update={where: planted(getattr(value, where), rest)})
    if isinstance(value, dict):
        if kind == "key":
            return {(k + PLANTED if k == where else k): v for k, v in value.items()}
        return {k: (planted(v, rest) if k == where else v) for k, v in value.items()}
    items = [planted(v, rest) if i == where else v for i, v in enumerate(value)]
    return type(value)(items)


def cases() -> Iterator[tuple[str, str, Variant, Path_]]:
    for label, config in (("project", None), ("fixture", FIXTURE_CONFIG)):
        settings = load_settings(config)
        for variant in variants_of(settings):
            if variant.file.dockerfile is None:
                for path in leaves(variant):
                    yield label, "/".join(str(w) for _, w in path), variant, path


CASES = list(cases())


def test_every_template_and_field_is_covered() -> None:
    variants = {(label, v.name) for label, _, v, _ in CASES}
    assert {("project", "base"), ("project", "systemd"), ("project", "dind"), ("fixture", "tiny")} <= variants
    assert len(CASES) > 100


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns of the planted values it serializes
def test_planted_instructions_never_reach_a_dockerfile() -> None:
    settings = {"project": load_settings(), "fixture": load_settings(FIXTURE_CONFIG)}
    clean = {(label, v.name): instruction_words(render_variant(v, settings[label]).dockerfile)
             for label, _, v, _ in CASES}
    refused, unchanged, leaked = [], [], []
    for label, where, variant, path in CASES:
        hostile = planted(variant, path)
        try:
            rendered = render_variant(hostile, settings[label])
        except FactoryError as exc:
            message = str(exc)  # refused by the instruction check, or by a template that needs the value
            assert "\n" not in message, f"one line: {message!r}"
            assert "became build code" in message or "(rendering variant " in message, message
            refused.append(where)
            continue
        if instruction_words(rendered.dockerfile) == clean[(label, variant.name)]:
            unchanged.append(where)
        else:
            leaked.append(f"{label} {variant.name}: {where}")
    assert not leaked, leaked
    # both outcomes happen: quoted places keep the list; unquoted ones are refused
    assert refused and unchanged, (len(refused), len(unchanged))
    assert any(w.startswith("file/env/") for w in unchanged)  # an ENV value is quoted


def test_lint_refuses_instructions_the_template_does_not_declare() -> None:
    base = next(v for v in load_variants(load_settings().variants_dir, ["linux/amd64"]) if v.name == "base")
    rendered = render_variant(base, load_settings())
    smuggled = RenderedVariant(rendered.name, rendered.dockerfile.replace("\nUSER ", "\nRUN touch /pwned\nUSER ", 1),
                               rendered.files, rendered.declared)
    (finding,) = [f for f in lint.instruction_findings({"base": smuggled})]
    assert finding.target == "rendered base/Dockerfile"
    assert "the template declares USER" in finding.output and "variant data became build code" in finding.output
    assert lint.instruction_findings({"base": rendered}) == []


@pytest.mark.parametrize("name", ["base", "systemd", "dind"])
def test_the_declared_list_is_the_rendered_one(name: str) -> None:
    variant = next(v for v in variants_of(load_settings()) if v.name == name)
    rendered = render_variant(variant, load_settings())
    assert rendered.declared == instruction_words(rendered.dockerfile)
