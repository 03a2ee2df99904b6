"""Docker tier: a real engine, a real registry on a free port, fixture variants
built for both platforms (arm64 under QEMU here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engine.registry import EmbeddedRegistry
from builder.model.records import BuildRecord, load
from tests.conftest import FIXTURE_CONFIG, fork_variants, hjk


@dataclass
class FixtureBuild:
    registry: EmbeddedRegistry
    record_path: Path
    stdout: str
    stderr: str

    @property
    def record(self) -> BuildRecord:
        return load(self.record_path, BuildRecord)


def fixture_cli(registry: EmbeddedRegistry, *args: str, config: Path = FIXTURE_CONFIG, check: bool = True):  # type: ignore[no-untyped-def]
    return hjk("--config", str(config), *args, "--registry", registry.address, check=check)


def namespaced(tmp_path: Path, namespace: str, with_lock: bool = True) -> Path:
    """The fixture variants under a namespace of their own (registry repositories no run used);
    returns the overlay config selecting them."""
    folder = tmp_path / namespace
    folder.mkdir()
    text = FIXTURE_CONFIG.read_text().replace("namespace: fixture", f"namespace: {namespace}")
    return fork_variants(folder, FIXTURE_CONFIG.parent / "variants", text, with_lock=with_lock)


@pytest.fixture(scope="session")
def root_in_registry(test_registry: EmbeddedRegistry) -> str:
    """The bootstrapped root, pushed to the test registry (root file systems come from the cache)."""
    proc = hjk("--config", str(FIXTURE_CONFIG), "root", "bootstrap", "--registry", test_registry.address)
    return proc.stdout.strip()


@pytest.fixture(scope="session")
def fixture_build(
    test_registry: EmbeddedRegistry, root_in_registry: str, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FixtureBuild]:
    record = tmp_path_factory.mktemp("records") / "build.json"
    proc = fixture_cli(test_registry, "build", "--record", str(record))
    yield FixtureBuild(test_registry, record, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def passing_results(fixture_build: FixtureBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smoke-test results in which tiny and leaf passed on both platforms."""
    results = tmp_path_factory.mktemp("results") / "test.json"
    hjk("--config", str(FIXTURE_CONFIG), "test", "--record", str(fixture_build.record_path),
        "--variant", "tiny", "--variant", "leaf", "--results", str(results))
    return results
