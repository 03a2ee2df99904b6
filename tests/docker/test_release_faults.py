"""Release gates under registry faults: a real registry behind a fault proxy.

The fixture images are copied (same digests) into a registry of this module's own,
which the tests may break or kill; the build record and test results are the fixture
run's, pointed at the proxy. After every fault: no immutable tag moved, no public tag
points at an untested index, no release record claims what didn't happen; once the
fault clears, a rerun converges and moves nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engine import oci
from builder.engine.registry import EmbeddedRegistry, catalog
from tests.conftest import FIXTURE_CONFIG, free_port, hjk
from tests.docker.conftest import FixtureBuild
from tests.fault_proxy import Fault, FaultProxy

VARIANTS = ("tiny", "leaf")


@dataclass
class Faulty:
    registry: EmbeddedRegistry
    proxy: FaultProxy
    address: str
    """The proxy's address: what the record and results name."""
    record: Path
    results: Path
    repository: str
    """ns/name inside the registry."""
    tested: dict[str, str]
    """variant -> the index digest that was built and tested."""

    def tags(self) -> dict[str, str]:
        """Every public tag (not the build's staging tags) -> the digest it points at, read
        from the registry directly (not through the proxy)."""
        found = {}
        for tag in catalog(self.registry.address).get(self.repository, []):
            if not tag.startswith("build-") and not tag.startswith("sha256-") and not tag.startswith("seed-"):
                # a registry killed mid-write may list a tag whose link it never wrote: it points at nothing
                digest = oci.lookup(f"{self.registry.address}/{self.repository}:{tag}")
                if digest is not None:
                    found[tag] = digest
        return found

    def publish(self, tmp_path: Path, version: str, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
        return hjk("--config", str(FIXTURE_CONFIG), "publish", "--record", str(self.record),
                   "--results", str(self.results), "--release-record", str(tmp_path / "release.json"),
                   "--version", version, "--no-sbom", *[a for v in VARIANTS for a in ("--variant", v)],
                   check=False, env=env)

    def assert_only_tested_indexes_are_public(self) -> None:
        allowed = set(self.tested.values())
        wrong = {tag: digest for tag, digest in self.tags().items() if digest not in allowed}
        assert not wrong, f"public tags point at indexes that were not tested: {wrong}"


@pytest.fixture(scope="module")
def faulty(fixture_build: FixtureBuild, passing_results: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    folder = tmp_path_factory.mktemp("faulty")
    registry = EmbeddedRegistry(free_port(), folder / "registry")
    registry.up()
    proxy = FaultProxy(registry.address)
    address = proxy.start()
    record = fixture_build.record
    source_registry, repository = record.repository.split("/", 1)
    tested = {}
    for variant in VARIANTS:
        digest = record.variant(variant).digest
        assert digest
        tested[variant] = digest
        subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                        "--dest-tls-verify=false", f"docker://{record.repository}@{digest}",
                        f"docker://{registry.address}/{repository}:seed-{variant}"],
                       check=True, capture_output=True, text=True, timeout=600)
    pointed = {}
    for name, path in (("record.json", fixture_build.record_path), ("results.json", passing_results)):
        pointed[name] = folder / name
        pointed[name].write_text(path.read_text().replace(source_registry, address))
    yield Faulty(registry, proxy, address, pointed["record.json"], pointed["results.json"], repository, tested)
    proxy.stop()
    registry.down()


@pytest.fixture(autouse=True)
def _clean_proxy(faulty: Faulty) -> Iterator[None]:
    faulty.proxy.clear()
    yield
    faulty.proxy.clear()


def test_a_503_on_every_lookup_refuses_before_any_tag_moves(faulty: Faulty, tmp_path: Path) -> None:
    before = faulty.tags()
    faulty.proxy.inject(Fault("HEAD", "/manifests/", status=503))
    proc = faulty.publish(tmp_path, "7.0.1")
    assert proc.returncode == 1
    assert "503 Service Unavailable" in proc.stderr
    assert "retrying in" in proc.stderr  # transient: retried before giving up
    assert faulty.tags() == before
    assert not (tmp_path / "release.json").exists()


@pytest.mark.parametrize(("status", "answer"), [
    (401, "authorization failed"), (403, "403 Forbidden"), (500, "500 Internal Server Error"),
])
def test_a_refusing_registry_fails_fast_naming_its_answer(
    faulty: Faulty, tmp_path: Path, status: int, answer: str,
) -> None:
    before = faulty.tags()
    faulty.proxy.inject(Fault("HEAD", "/manifests/", status=status))
    faulty.proxy.inject(Fault("GET", "/manifests/", status=status))
    proc = faulty.publish(tmp_path, "7.0.2")
    assert proc.returncode == 1
    assert answer in proc.stderr, proc.stderr
    assert "retrying in" not in proc.stderr  # not transient: no retry
    assert faulty.tags() == before
    assert not (tmp_path / "release.json").exists()


def test_reset_connections_refuse_before_any_tag_moves(faulty: Faulty, tmp_path: Path) -> None:
    before = faulty.tags()
    faulty.proxy.inject(Fault(None, "/manifests/", reset=True))
    proc = faulty.publish(tmp_path, "7.0.3")
    assert proc.returncode == 1
    assert faulty.tags() == before
    assert not (tmp_path / "release.json").exists()


def test_a_registry_that_stalls_past_the_timeout_is_a_failure_not_an_absence(
    faulty: Faulty, tmp_path: Path,
) -> None:
    before = faulty.tags()
    faulty.proxy.inject(Fault("HEAD", "/manifests/", stall=20))
    proc = faulty.publish(tmp_path, "7.0.4", env={"HJK_REGISTRY_TIMEOUT": "3"})
    assert proc.returncode == 1
    assert "timed out after 3" in proc.stderr, proc.stderr
    assert faulty.tags() == before
    assert not (tmp_path / "release.json").exists()


def test_the_registry_killed_mid_publish_leaves_only_tested_tags_and_a_rerun_converges(
    faulty: Faulty, tmp_path: Path,
) -> None:
    def kill_registry() -> None:
        pid = faulty.registry.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    # the first tag written (a manifest PUT) is the last thing the registry does
    faulty.proxy.inject(Fault("PUT", "/manifests/", times=1, hook=kill_registry))
    proc = faulty.publish(tmp_path, "8.0.0")
    assert proc.returncode == 1
    assert not (tmp_path / "release.json").exists()  # the record claims nothing
    faulty.proxy.clear()
    faulty.registry.up()
    faulty.assert_only_tested_indexes_are_public()
    rerun = faulty.publish(tmp_path, "8.0.0")
    assert rerun.returncode == 0, rerun.stderr
    release = json.loads((tmp_path / "release.json").read_text())
    assert {v["variant"]: v["index_digest"] for v in release["variants"]} == faulty.tested
    for v in release["variants"]:
        assert f"{v['variant']}-8.0.0" in v["tags"]
    faulty.assert_only_tested_indexes_are_public()
    again = faulty.publish(tmp_path, "8.0.0")
    assert again.returncode == 0, again.stderr
    assert "0 tags moved" in again.stderr


def test_transient_errors_within_the_retry_budget_pass_with_the_retries_shown(
    faulty: Faulty, tmp_path: Path,
) -> None:
    faulty.proxy.inject(Fault("HEAD", "/manifests/", status=503, times=1))
    proc = faulty.publish(tmp_path, "8.0.1")
    assert proc.returncode == 0, proc.stderr
    assert "retrying in" in proc.stderr and "503" in proc.stderr
    faulty.assert_only_tested_indexes_are_public()
    tags = faulty.tags()
    assert tags["tiny-8.0.1"] == faulty.tested["tiny"] and tags["leaf-8.0.1"] == faulty.tested["leaf"]


def test_an_immutable_tag_is_never_moved_by_a_fault(faulty: Faulty, tmp_path: Path) -> None:
    """A version tag already published stays where it is whatever the registry answers."""
    first = faulty.publish(tmp_path, "8.0.2")  # this test's own release, whatever ran before
    assert first.returncode == 0, first.stderr
    published = faulty.tags()
    assert published.get("tiny-8.0.2") == faulty.tested["tiny"]
    faulty.proxy.inject(Fault("HEAD", "/manifests/tiny-8.0.2", status=500))
    faulty.proxy.inject(Fault("GET", "/manifests/tiny-8.0.2", status=500))
    proc = faulty.publish(tmp_path, "8.0.2")
    assert proc.returncode == 1 and "500" in proc.stderr
    assert faulty.tags() == published
