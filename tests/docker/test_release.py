"""`release`, the main job, on fixture variants: every stage in order, stopping at the first
failure; a release of named variants (or a team's Dockerfile) scoped to them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.engine import oci
from builder.engine.registry import catalog
from builder.engine.state import STATE_ENV
from builder.model.records import BuildRecord, ReleaseRecord, TestResults, load
from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild, namespaced


def release(fixture_build: FixtureBuild, *args: str, config: Path = FIXTURE_CONFIG):  # type: ignore[no-untyped-def]
    return hjk("--config", str(config), "release", "--registry", fixture_build.registry.address, *args, check=False)


def records() -> Path:
    return Path(os.environ[STATE_ENV]) / "records"


@pytest.fixture(scope="module")
def tiny_released(fixture_build: FixtureBuild) -> None:
    """tiny released (tested, signed, tagged) on its own, once: the parent the scoped releases
    of this module stand on."""
    proc = release(fixture_build, "--variant", "tiny")
    assert proc.returncode == 0, proc.stderr


def test_release_runs_every_stage_then_a_second_one_moves_nothing(
    fixture_build: FixtureBuild, tiny_released: None,
) -> None:
    first = release(fixture_build, "--variant", "leaf")
    assert first.returncode == 0, first.stderr
    assert "== publish:" in first.stderr  # the human output, once
    released = load(records() / "release.json", ReleaseRecord)
    assert [s.name for s in released.stages] == [
        "registry", "render", "lock", "parents", "build", "signed parents", "test", "scan", "sign", "sbom",
        "provenance", "publish"]
    assert released.stage("lock") == "images.lock.yaml current"
    assert released.stage("signed parents") == "tiny signed"
    repo = fixture_build.record.repository
    tiny_images = {f"{repo}@{b.digest}" for b in load(records() / "build.json", BuildRecord).builds
                   if b.variant == "tiny"}
    assert len(tiny_images) == 2 and set(released.parents) == tiny_images  # stood on, as published
    assert all(b.status == "reused" for b in load(records() / "build.json", BuildRecord).builds
               if b.variant == "tiny")
    assert set(oci.inspect(f"{repo}:leaf").platforms) == {"linux/amd64", "linux/arm64"}
    # scoped: leaf alone is tested and published; tiny was built on, never tested again
    assert {(i.variant, i.platform) for i in load(records() / "test.json", TestResults).images} == {
        ("leaf", "linux/amd64"), ("leaf", "linux/arm64")}
    assert released.scope == ["leaf"] and [v.variant for v in released.variants] == ["leaf"]
    second = release(fixture_build, "--variant", "leaf")
    assert second.returncode == 0, second.stderr
    rebuilt = load(records() / "build.json", BuildRecord)
    assert (rebuilt.count("built"), rebuilt.count("reused")) == (0, 4)
    again = load(records() / "release.json", ReleaseRecord)
    assert [v.moved for v in again.variants] == [[]] and not again.pull_costs


def test_a_one_platform_team_release_touches_only_the_team_image(
    fixture_build: FixtureBuild, tmp_path: Path, tiny_released: None,
) -> None:
    """A team's Dockerfile released for one platform: a one-platform index of the team image
    alone; its parent and siblings keep their index digests byte for byte."""
    from tests.docker.test_dockerfile_mode import team_project

    repo = fixture_build.record.repository
    before = {tag: oci.lookup(f"{repo}:{tag}") for tag in ("tiny", "leaf")}
    dockerfile = team_project(tmp_path)
    proc = release(fixture_build, "--dockerfile", str(dockerfile), "--name", "teamone", "--platform", "linux/amd64")
    assert proc.returncode == 0, proc.stderr
    assert set(oci.inspect(f"{repo}:teamone").platforms) == {"linux/amd64"}
    assert {tag: oci.lookup(f"{repo}:{tag}") for tag in ("tiny", "leaf")} == before
    tested = load(records() / "test.json", TestResults).images
    assert {(i.variant, i.platform) for i in tested} == {("teamone", "linux/amd64")}
    released = load(records() / "release.json", ReleaseRecord)
    assert released.scope == ["teamone"]
    (variant,) = released.variants
    assert variant.variant == "teamone" and set(variant.platforms) == {"linux/amd64"}


def test_a_parent_that_is_not_published_stops_the_release_naming_it(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """In a namespace nothing was released to, leaf's parent isn't there: the release stops
    before building anything, naming the parent and the command that publishes it."""
    overlay = namespaced(tmp_path, "lonely")
    proc = release(fixture_build, "--variant", "leaf", config=overlay)
    assert proc.returncode == 1
    assert "release stopped at stage 'parents'" in proc.stderr
    assert "parent tiny (linux/" in proc.stderr and ") is not in " in proc.stderr
    assert "publish it first with `hjk-images release --variant tiny`" in proc.stderr
    assert "lonely/images" not in catalog(fixture_build.registry.address)  # nothing was built or pushed


def test_a_failing_smoke_test_stops_the_release_and_moves_no_tag(
    fixture_build: FixtureBuild, tiny_released: None,
) -> None:
    repo_path = fixture_build.record.repository.split("/", 1)[1]
    before = catalog(fixture_build.registry.address).get(repo_path, [])
    proc = release(fixture_build, "--variant", "broken")
    assert proc.returncode == 1
    assert "release stopped at stage 'test'" in proc.stderr
    assert "check 'claude answers --version' failed" in proc.stderr
    after = catalog(fixture_build.registry.address).get(repo_path, [])
    assert [t for t in after if not t.startswith("build-")] == [t for t in before if not t.startswith("build-")]


def test_pin_writes_the_published_digest_and_check_names_the_line_behind(
    fixture_build: FixtureBuild, tmp_path: Path, tiny_released: None,
) -> None:
    """`pin` writes tiny's published index digest into a team Dockerfile; after tiny's tag
    moves (a new release), `pin --check` exits 1 naming the line, and `pin` moves it."""
    import json
    import subprocess

    from tests.docker.test_dockerfile_mode import team_project

    repo, registry = fixture_build.record.repository, fixture_build.registry.address
    dockerfile = team_project(tmp_path)
    hjk("--config", str(FIXTURE_CONFIG), "pin", str(dockerfile), "--registry", registry)
    tiny = oci.lookup(f"{repo}:tiny")
    assert f"FROM ghcr.io/fixture/images:tiny@{tiny}\n" in dockerfile.read_text()
    assert "USER 0\nCOPY note.txt /etc/team-note\n" in dockerfile.read_text()  # the rest as it was
    hjk("--config", str(FIXTURE_CONFIG), "pin", str(dockerfile), "--check", "--registry", registry)
    moved_to = f"{repo}@{fixture_build.record.variant('leaf').digest}"  # stands in for a newer tiny
    subprocess.run(["docker", "buildx", "imagetools", "create", "-t", f"{repo}:tiny", moved_to], check=True,
                   capture_output=True)
    try:
        behind = hjk("--config", str(FIXTURE_CONFIG), "pin", str(dockerfile), "--check", "--registry", registry,
                     check=False)
        assert behind.returncode == 1
        assert f"{dockerfile}:1: FROM ...:tiny is pinned to {tiny}, the registry's :tiny is " in behind.stdout
        # `bump --pins` moves the same line, a row of its table
        newer = oci.lookup(f"{repo}:tiny")
        rows = json.loads(hjk("--config", str(FIXTURE_CONFIG), "bump", "--pins", str(dockerfile), "--registry",
                              registry, "--json").stdout)
        assert [(r["variant"], r["tool"], r["current"], r["target"]) for r in rows if r["source"] == "registry"] == \
            [(str(dockerfile), "FROM :tiny (line 1)", tiny, newer)]
        assert f"FROM ghcr.io/fixture/images:tiny@{newer}\n" in dockerfile.read_text()
        again = json.loads(hjk("--config", str(FIXTURE_CONFIG), "bump", "--pins", str(dockerfile), "--registry",
                               registry, "--dry-run", "--json").stdout)
        assert [(r["status"], r["target"]) for r in again if r["source"] == "registry"] == [("current", None)]
    finally:
        subprocess.run(["docker", "buildx", "imagetools", "create", "-t", f"{repo}:tiny", f"{repo}@{tiny}"],
                       check=True, capture_output=True)


def test_the_team_workflow_sequence_publishes_the_team_image_alone(
    fixture_build: FixtureBuild, tmp_path: Path, tiny_released: None,
) -> None:
    """.github/workflows/team-image.yml's commands, run here against the embedded registry:
    each platform built and tested on its own (as on its native runner), merged, published;
    the team image alone is tagged, its parent and siblings keep their digests."""
    from tests.docker.test_dockerfile_mode import team_project

    repo, registry = fixture_build.record.repository, fixture_build.registry.address
    before = {tag: oci.lookup(f"{repo}:{tag}") for tag in ("tiny", "leaf")}
    team = ["--dockerfile", str(team_project(tmp_path)), "--name", "teamflow"]
    cli = ["--config", str(FIXTURE_CONFIG)]
    for arch in ("amd64", "arm64"):
        record, results = tmp_path / f"record-{arch}.json", tmp_path / f"results-{arch}.json"
        hjk(*cli, "build", *team, "--variant", "teamflow", "--registry", registry, "--platform", f"linux/{arch}",
            "--record", str(record))
        hjk(*cli, "test", *team, "--variant", "teamflow", "--platform", f"linux/{arch}", "--record", str(record),
            "--results", str(results))
    hjk(*cli, "merge", str(tmp_path / "record-amd64.json"), str(tmp_path / "record-arm64.json"), *team,
        "--platform", "linux/amd64", "--platform", "linux/arm64", "--record", str(tmp_path / "record.json"))
    hjk(*cli, "publish", *team, "--variant", "teamflow", "--record", str(tmp_path / "record.json"),
        "--results", str(tmp_path / "results-amd64.json"), "--results", str(tmp_path / "results-arm64.json"),
        "--platform", "linux/amd64", "--platform", "linux/arm64", "--release-record", str(tmp_path / "release.json"))
    assert set(oci.inspect(f"{repo}:teamflow").platforms) == {"linux/amd64", "linux/arm64"}
    assert {tag: oci.lookup(f"{repo}:{tag}") for tag in ("tiny", "leaf")} == before
    assert [v.variant for v in load(tmp_path / "release.json", ReleaseRecord).variants] == ["teamflow"]
    for arch in ("amd64", "arm64"):
        tested = load(tmp_path / f"results-{arch}.json", TestResults).images
        assert {(i.variant, i.platform) for i in tested} == {("teamflow", f"linux/{arch}")}


def test_a_team_dockerfile_pinned_to_an_older_parent_builds_on_that_digest(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """A FROM pinned by `pin` is honoured: the build stands on the pinned index's platform
    image (here another index of the repository, standing in for an older tiny), says so,
    and builds no parent."""
    import json

    from tests.docker.test_dockerfile_mode import team_project

    repo, registry = fixture_build.record.repository, fixture_build.registry.address
    older = fixture_build.record.variant("leaf").digest  # any earlier index of the repository
    dockerfile = team_project(tmp_path)
    dockerfile.write_text(dockerfile.read_text().replace("FROM ghcr.io/fixture/images:tiny\n",
                                                         f"FROM ghcr.io/fixture/images:tiny@{older}\n"))
    record = tmp_path / "pinned.json"
    proc = hjk("--config", str(FIXTURE_CONFIG), "build", "--dockerfile", str(dockerfile), "--name", "teampin",
               "--variant", "teampin", "--platform", "linux/amd64", "--registry", registry, "--record", str(record))
    assert f"teampin: built on tiny as its Dockerfile pins it ({repo}@{older})" in proc.stderr
    built = load(record, BuildRecord)
    assert {b.variant for b in built.builds} == {"teampin"}  # tiny is neither built nor reused
    (team,) = built.builds
    labels = json.loads(oci.config_of(f"{repo}@{team.digest}"))["config"]["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == oci.inspect(f"{repo}@{older}").platforms["linux/amd64"]


def test_a_release_that_moves_a_tag_says_what_its_users_pull(
    fixture_build: FixtureBuild, tmp_path: Path, tiny_released: None,
) -> None:
    """The release record and table: for the image the tag held before, the layers a user
    already has (tiny's and the unchanged ones) and the bytes of the rest."""
    from tests.docker.test_build import fork_of_fixtures

    overlay = fork_of_fixtures(tmp_path)
    # two releases of one commit: without the immutable `-sha-<commit>` tag, which can't move
    overlay.write_text(overlay.read_text() + "tags:\n  sha: null\n")
    variants = tmp_path / "variants"
    (variants / "leafcost.yaml").write_text(
        "name: leafcost\nparent: tiny\ntemplate: variant.Dockerfile.j2\n"
        "fragments:\n  root: [fragments/leafcost.j2]\n")
    fragment = variants / "fragments" / "leafcost.j2"
    made = []
    for word in ("first", "second"):
        fragment.write_text(f"RUN echo {word} {tmp_path.name} > /etc/leafcost\n")
        proc = release(fixture_build, "--variant", "leafcost", "--platform", "linux/amd64", config=overlay)
        assert proc.returncode == 0, proc.stderr
        made.append(load(records() / "release.json", ReleaseRecord))
    first, second = made
    assert first.pull_costs == []  # nothing was tagged leafcost before
    (cost,) = second.pull_costs
    assert cost.variant == "leafcost" and cost.platform == "linux/amd64"
    new_layers = oci.layers_of(cost.new)
    have = {d for d, _ in oci.layers_of(cost.old)}
    assert cost.old.endswith(first.variants[0].platforms["linux/amd64"])
    assert cost.new_layers == len([d for d, _ in new_layers if d not in have]) >= 1
    assert cost.shared_layers == len(oci.layers_of(cost.new)) - cost.new_layers > 0
    assert cost.bytes_to_pull == sum(size for d, size in new_layers if d not in have)
    assert "what an update costs to pull" in proc.stdout
