"""`new-variant` writes a valid, commented starting point and says what to run next."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PROJECT_DIR, fork_variants, hjk, load_variants


def team_fork(tmp_path: Path) -> Path:
    return fork_variants(tmp_path, PROJECT_DIR / "variants", "namespace: acme\n")


def test_new_variant_is_valid_and_shows_up_in_plan_render_and_lint(tmp_path: Path) -> None:
    overlay = team_fork(tmp_path)
    proc = hjk("--config", str(overlay), "new-variant", "data-team", "--parent", "base")
    assert proc.stdout.split() == [str(tmp_path / "variants" / "data-team.yaml"),
                                   str(tmp_path / "variants" / "checks" / "data-team.py")]
    assert "hjk-images build --variant data-team" in proc.stderr
    assert "# Tools with exact versions" in (tmp_path / "variants" / "data-team.yaml").read_text()
    plan = json.loads(hjk("--config", str(overlay), "plan", "--offline", "--json").stdout)
    assert {(j["variant"], j["parent"]) for j in plan["jobs"]} >= {("data-team", "base")}
    assert plan["repository"].endswith("/acme/headjack")
    hjk("--config", str(overlay), "render", "--variant", "data-team", "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "data-team" / "Dockerfile").is_file()
    assert "lint clean: 4 Dockerfiles" in hjk("--config", str(overlay), "lint").stderr


def test_new_variant_refuses_clashes_and_unknown_parents(tmp_path: Path) -> None:
    overlay = team_fork(tmp_path)
    clash = hjk("--config", str(overlay), "new-variant", "dind", check=False)
    assert clash.returncode == 1 and "a variant named 'dind' already exists" in clash.stderr
    orphan = hjk("--config", str(overlay), "new-variant", "x", "--parent", "nosuch", check=False)
    assert orphan.returncode == 1 and "no variant named 'nosuch' to build on" in orphan.stderr
    assert not (tmp_path / "variants" / "x.yaml").exists()


def test_the_commented_languages_example_is_valid_once_uncommented(tmp_path: Path) -> None:

    overlay = team_fork(tmp_path)
    hjk("--config", str(overlay), "new-variant", "polyglot", "--parent", "base")
    path = tmp_path / "variants" / "polyglot.yaml"
    text = path.read_text()
    example = "# languages:\n#   python: [3.11.9]\n#   node: [22.14.0]\n"
    assert example in text
    path.write_text(text.replace(example, example.replace("# ", "")))
    variants = load_variants(tmp_path / "variants", ["linux/amd64", "linux/arm64"])
    assert variants["polyglot"].languages == {"python": ("3.11.9",), "node": ("22.14.0",)}
