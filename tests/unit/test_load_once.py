"""Each command reads its inputs once: the variant files and the lock are loaded a single
time, then handed down (counted here in a plan, which is what `release --dry-run` shows,
and in a build's checks before anything reaches Docker)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from builder import project
from builder.cli import main
from builder.stages import lock
from tests.conftest import FIXTURE_CONFIG


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counted: Counter[str] = Counter()

    def counting(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(project, "load_variant_files", counting("variants", project.load_variant_files))
    monkeypatch.setattr(lock, "load_lock", counting("lock", lock.load_lock))
    return counted


@pytest.mark.parametrize("config", [None, FIXTURE_CONFIG], ids=["project", "fixture"])
def test_a_plan_loads_the_variants_and_the_lock_once(loads: Counter[str], config: Any) -> None:
    args = (["--config", str(config)] if config else []) + ["plan", "--offline", "--json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert loads == Counter({"variants": 1, "lock": 1})


def test_changed_since_reads_and_renders_this_tree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--changed-since` renders the old tree and this one; the plan then reuses this tree's
    variants and rendered contexts instead of reading and rendering them again."""
    from builder.stages import render
    from tests.conftest import PROJECT_DIR

    here = PROJECT_DIR / "variants"
    reads: Counter[str] = Counter()
    renders: Counter[str] = Counter()
    real_load, real_render = project.load_variant_files, render.render_variant

    def load(folder: Any) -> Any:
        reads["here" if folder == here else "elsewhere"] += 1
        return real_load(folder)

    def render_one(variant: Any, settings: Any) -> Any:
        if settings.project_dir == PROJECT_DIR:
            renders[variant.name] += 1
        return real_render(variant, settings)

    monkeypatch.setattr(project, "load_variant_files", load)
    monkeypatch.setattr(render, "render_variant", render_one)
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                           text=True, check=True).stdout.split()[0]  # before any variant: all of them changed
    result = CliRunner().invoke(main, ["plan", "--offline", "--json", "--changed-since", first],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout[result.stdout.index("{"):])
    assert {job["variant"] for job in plan["jobs"]} == {"base", "systemd", "dind"}  # planned
    assert reads["here"] == 1 and reads["elsewhere"] <= 1
    assert set(renders) == {"base", "systemd", "dind"} and set(renders.values()) == {1}, renders
