"""Rendering: deterministic, plain, pinned through build args, errors that point at the template."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from builder.model.config import load_settings
from builder.model.errors import FactoryError
from builder.stages.render import render_all, render_variant
from tests.conftest import PROJECT_DIR, hjk, load_variants


def project_render() -> dict[str, str]:
    settings = load_settings(project_dir=PROJECT_DIR)
    variants = load_variants(settings.variants_dir, list(settings.config.platforms))
    return {name: r.dockerfile for name, r in render_all(list(variants), settings).items()}


def test_rendering_twice_gives_identical_bytes() -> None:
    assert project_render() == project_render()


def test_rendered_output_is_plain_dockerfile() -> None:
    for name, text in project_render().items():
        assert "{{" not in text and "{%" not in text, name
        assert not re.search(r"\n\n\n", text), name
        assert "# syntax=" not in text and "<<" not in text, f"{name}: no syntax line or heredoc on BuildKit 0.8"


def test_every_from_is_a_build_argument_never_a_tag() -> None:
    for name, text in project_render().items():
        froms = [line for line in text.splitlines() if line.startswith("FROM ")]
        assert froms == ["FROM ${BASE_IMAGE}"], name


def test_committed_rendered_files_are_current() -> None:
    proc = hjk("render", "--check")
    assert "match the templates" in proc.stderr


def test_render_check_fails_on_a_stale_copy(tmp_path: Path) -> None:
    hjk("render", "--out", str(tmp_path))
    dockerfile = tmp_path / "dind" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# hand edit\n")
    proc = hjk("render", "--check", "--out", str(tmp_path), check=False)
    assert proc.returncode == 1
    assert "out of date for: dind" in proc.stderr


def test_undefined_variable_names_template_and_line(tmp_path: Path) -> None:
    templates = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "dockerfiles", templates / "dockerfiles")
    shutil.copy(PROJECT_DIR / "factory.yaml", templates / "factory.yaml")
    (templates / "variants").mkdir()
    (templates / "variants" / "x.yaml").write_text("name: x\nparent: root\ntemplate: broken.Dockerfile.j2\n")
    (templates / "dockerfiles" / "broken.Dockerfile.j2").write_text(
        '{% extends "layout.Dockerfile.j2" %}\n{% block root_steps %}\nRUN echo {{ no_such_value }}\n{% endblock %}\n'
    )
    settings = load_settings(project_dir=templates)
    variant = load_variants(settings.variants_dir, ["linux/amd64"])["x"]
    with pytest.raises(FactoryError, match=r"broken\.Dockerfile\.j2:3: 'no_such_value' is undefined"):
        render_variant(variant, settings)


def test_fork_adds_a_variant_without_code_change(tmp_path: Path) -> None:
    variants = tmp_path / "variants"
    shutil.copytree(PROJECT_DIR / "variants", variants)
    (variants / "team.yaml").write_text(
        "name: team\nparent: base\ntemplate: variant.Dockerfile.j2\npackages: [libpq-dev, postgresql-client]\n"
    )
    overlay = tmp_path / "org.yaml"
    overlay.write_text("variants_dir: variants\n")
    plan = json.loads(hjk("--config", str(overlay), "plan", "--offline", "--json").stdout)
    assert {(j["variant"], j["parent"]) for j in plan["jobs"]} >= {("team", "base")}
    out = tmp_path / "out"
    hjk("--config", str(overlay), "render", "--variant", "team", "--out", str(out))
    text = (out / "team" / "Dockerfile").read_text()
    assert "      libpq-dev \\\n      postgresql-client \\\n" in text


def test_label_and_env_values_are_quoted_the_dockerfile_way() -> None:
    from builder.stages.templating import double_quoted

    value = "sh -c 'echo \"hi\"; exit 9' \\ done"
    assert double_quoted(value) == "\"sh -c 'echo \\\"hi\\\"; exit 9' \\\\ done\""
    assert double_quoted("${BUILD_REVISION}") == '"${BUILD_REVISION}"'


def test_context_files_get_a_time_that_follows_from_their_content(tmp_path: Path) -> None:
    """Same bytes, same time (a COPY layer's digest is its content's); an edit of the same
    size, another time (the engine's context sync resends only files whose time or size moved)."""
    from builder.model.rendered import RenderedVariant

    def times(data: dict[str, bytes], folder: str) -> dict[str, int]:
        RenderedVariant("v", "FROM scratch\n", {f"files/{k}": v for k, v in data.items()}).write(tmp_path / folder)
        return {k: int((tmp_path / folder / "files" / k).stat().st_mtime) for k in data}

    first = times({"a": b"one\n", "b": b"two\n"}, "first")
    again = times({"a": b"one\n", "b": b"six\n"}, "again")
    assert first["a"] == again["a"]
    assert first["b"] != again["b"]
    assert first["a"] != first["b"]
