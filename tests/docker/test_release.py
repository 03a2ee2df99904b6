"""`release`, the main job, on fixture variants: every stage in order, stopping at the first failure."""

from __future__ import annotations

from builder.engine import oci
from builder.engine.registry import catalog
from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild


def release(fixture_build: FixtureBuild, *args: str):  # type: ignore[no-untyped-def]
    return hjk("--config", str(FIXTURE_CONFIG), "release", "--registry", fixture_build.registry.address,
               *args, check=False)


def test_release_runs_every_stage_then_a_second_one_moves_nothing(fixture_build: FixtureBuild) -> None:
    first = release(fixture_build, "--variant", "leaf")
    assert first.returncode == 0, first.stderr
    for stage in ("registry", "lock", "render", "build", "test", "publish", "sign", "sbom"):
        assert f"== {stage}:" in first.stderr
    assert "== lock: images.lock.yaml current" in first.stderr
    repo = fixture_build.record.repository
    assert set(oci.inspect(f"{repo}:leaf").platforms) == {"linux/amd64", "linux/arm64"}
    # like `publish --variant leaf`: the ancestors are built on, not published
    assert "== publish: 1 variant(s)," in first.stderr
    second = release(fixture_build, "--variant", "leaf")
    assert second.returncode == 0, second.stderr
    assert "== build: 0 built, 4 reused" in second.stderr
    assert "== publish: 1 variant(s), 0 tags moved" in second.stderr


def test_a_failing_smoke_test_stops_the_release_and_moves_no_tag(fixture_build: FixtureBuild) -> None:
    repo_path = fixture_build.record.repository.split("/", 1)[1]
    before = catalog(fixture_build.registry.address).get(repo_path, [])
    proc = release(fixture_build, "--variant", "broken")
    assert proc.returncode == 1
    assert "release stopped at stage 'test'" in proc.stderr
    assert "check 'claude answers --version' failed" in proc.stderr
    after = catalog(fixture_build.registry.address).get(repo_path, [])
    assert [t for t in after if not t.startswith("build-")] == [t for t in before if not t.startswith("build-")]
