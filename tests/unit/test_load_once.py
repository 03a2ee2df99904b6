"""Each command reads its inputs once: the variant files and the lock are loaded a single
time, then handed down (counted here in a plan, which is what `release --dry-run` shows,
and in a build's checks before anything reaches Docker)."""

from __future__ import annotations

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
