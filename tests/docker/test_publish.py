"""Publishing fixture variants to a real registry: only what passed, immutable tags kept."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

from builder.engine import oci
from builder.engine.registry import catalog
from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild


def publish(fixture_build: FixtureBuild, results: Path, tmp_path: Path, *args: str,
            config: Path = FIXTURE_CONFIG) -> subprocess.CompletedProcess[str]:
    return hjk("--config", str(config), "publish", "--record", str(fixture_build.record_path),
               "--results", str(results), "--release-record", str(tmp_path / "release.json"), *args, check=False)


def tags_of(fixture_build: FixtureBuild) -> set[str]:
    repo = fixture_build.record.repository.split("/", 1)[1]
    return set(catalog(fixture_build.registry.address).get(repo, []))


def test_publish_refuses_an_image_whose_tests_failed(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    results = tmp_path / "broken.json"
    hjk("--config", str(FIXTURE_CONFIG), "test", "--record", str(fixture_build.record_path),
        "--variant", "broken", "--results", str(results), check=False)
    proc = publish(fixture_build, results, tmp_path, "--variant", "broken")
    assert proc.returncode == 1
    assert "refusing to publish broken:" in proc.stderr and "has no passing smoke test" in proc.stderr
    assert "broken" not in tags_of(fixture_build)


def test_dry_run_changes_nothing(fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path) -> None:
    before = tags_of(fixture_build)
    proc = publish(fixture_build, passing_results, tmp_path, "--variant", "tiny", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would tag" in proc.stderr and "dry run: nothing changed" in proc.stderr
    assert tags_of(fixture_build) == before
    assert not (tmp_path / "release.json").exists()


def test_publish_tags_tested_indexes_then_moves_nothing_the_second_time(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    proc = publish(fixture_build, passing_results, tmp_path, "--variant", "tiny", "--variant", "leaf")
    assert proc.returncode == 0, proc.stderr
    record = fixture_build.record
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    sha = record.revision[:7]
    for variant in ("tiny", "leaf"):
        for tag in (variant, f"{variant}-{today}", f"{variant}-sha-{sha}"):
            index = oci.inspect(f"{record.repository}:{tag}")
            assert index.digest == record.variant(variant).digest
            assert set(index.platforms) == {"linux/amd64", "linux/arm64"}
        assert f"{record.repository}:{variant}@{record.variant(variant).digest}" in proc.stdout
    release = json.loads((tmp_path / "release.json").read_text())
    assert {v["variant"] for v in release["variants"]} == {"tiny", "leaf"}
    again = publish(fixture_build, passing_results, tmp_path, "--variant", "tiny", "--variant", "leaf")
    assert again.returncode == 0, again.stderr
    assert all(v["moved"] == [] for v in json.loads((tmp_path / "release.json").read_text())["variants"])


def test_an_immutable_tag_is_never_moved_without_force(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    record = fixture_build.record
    leaf_index = record.variant("leaf").digest
    # someone already published tiny-9.9.9 from another index
    subprocess.run(["docker", "buildx", "imagetools", "create", "-t", f"{record.repository}:tiny-9.9.9",
                    f"{record.repository}@{leaf_index}"], capture_output=True, check=True)
    proc = publish(fixture_build, passing_results, tmp_path, "--variant", "tiny", "--version", "9.9.9")
    assert proc.returncode == 1
    assert f"refusing to move immutable tag {record.repository}:tiny-9.9.9 from {leaf_index}" in proc.stderr
    assert oci.inspect(f"{record.repository}:tiny-9.9.9").digest == leaf_index
    forced = publish(fixture_build, passing_results, tmp_path, "--variant", "tiny", "--version", "9.9.9", "--force")
    assert forced.returncode == 0, forced.stderr
    assert oci.inspect(f"{record.repository}:tiny-9.9.9").digest == record.variant("tiny").digest


def test_an_invalid_tag_is_rejected_before_anything_is_pushed(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    overlay = tmp_path / "tags.yaml"
    overlay.write_text(FIXTURE_CONFIG.read_text() + "tags:\n  moving: ['{variant}', 'x{variant}/nested']\n")
    (tmp_path / "variants").symlink_to(FIXTURE_CONFIG.parent / "variants")
    before = tags_of(fixture_build)
    proc = publish(fixture_build, passing_results, tmp_path, "--variant", "leaf", config=overlay)
    assert proc.returncode == 1
    # refused when the config loads, before the record is even read
    assert f"{overlay}: tags.moving[1]: tag template 'x{{variant}}/nested' gives 'xbase/nested', not an OCI tag" \
        in proc.stderr
    assert tags_of(fixture_build) == before
    assert not (tmp_path / "release.json").exists()


def test_an_image_over_budget_stops_publish_before_any_tag_moves(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    from tests.docker.test_build import fork_of_fixtures

    overlay = fork_of_fixtures(tmp_path)
    leaf = tmp_path / "variants" / "leaf.yaml"
    leaf.write_text(leaf.read_text() + "budget: {compressed: 1KB}\n")
    before = tags_of(fixture_build)
    proc = publish(fixture_build, passing_results, tmp_path, "--variant", "leaf", "--version", "3.0.0",
                   config=overlay)
    assert proc.returncode == 1
    assert "over budget, nothing published" in proc.stderr
    assert "leaf linux/amd64 is" in proc.stderr and "over its budget of 0 MB" in proc.stderr
    assert "heaviest layers:" in proc.stderr and "ADD rootfs.tar" in proc.stderr
    assert tags_of(fixture_build) == before
    allowed = publish(fixture_build, passing_results, tmp_path, "--variant", "leaf", "--version", "3.0.0",
                      "--allow-over-budget", config=overlay)
    assert allowed.returncode == 0, allowed.stderr
    release = json.loads((tmp_path / "release.json").read_text())
    assert len(release["over_budget"]) == 2  # both platforms, said and recorded
    assert "leaf-3.0.0" in tags_of(fixture_build)
    sizes = release["variants"][0]["sizes"]
    assert set(sizes) == {"linux/amd64", "linux/arm64"} and all(s["compressed"] > 0 for s in sizes.values())


def test_two_publishes_racing_for_one_immutable_tag_have_exactly_one_winner(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    """A laptop and CI (different state folders, so no shared lock) publish two different,
    tested builds of leaf at the same release version at the same moment: exactly one wins,
    the other fails naming the tag, and the tag holds the winner's index."""
    import uuid

    from builder.model.records import BuildRecord, load
    from tests.docker.conftest import fixture_cli
    from tests.docker.test_build import fork_of_fixtures

    overlay = fork_of_fixtures(tmp_path)
    (tmp_path / "variants" / "fragments" / "leaf.j2").write_text("RUN echo leaf-raced > /etc/leaf-release\n")
    # the race is for the release-version tag: no `-sha-<commit>` tag, which other tests'
    # publishes of leaf at this commit hold already
    no_sha = "tags:\n  sha: null\n"
    overlay.write_text(overlay.read_text() + no_sha)
    original = tmp_path / "original.yaml"
    original.write_text(FIXTURE_CONFIG.read_text().replace("variants_dir: variants",
                                                           f"variants_dir: {FIXTURE_CONFIG.parent / 'variants'}")
                        + no_sha)
    other_record, other_results = tmp_path / "other.json", tmp_path / "other-results.json"
    fixture_cli(fixture_build.registry, "build", "--variant", "leaf", "--record", str(other_record), config=overlay)
    hjk("--config", str(overlay), "test", "--record", str(other_record), "--variant", "leaf",
        "--results", str(other_results))
    version = f"7.7.{uuid.uuid4().int % 100000}"
    tag = f"{fixture_build.record.repository}:leaf-{version}"
    runs = {
        fixture_build.record.variant("leaf").digest: (original, fixture_build.record_path, passing_results),
        load(other_record, BuildRecord).variant("leaf").digest: (overlay, other_record, other_results),
    }
    assert len(runs) == 2, "two different builds race"
    exe = str(Path(__file__).parents[2] / ".venv" / "bin" / "hjk-images")
    started = {
        digest: subprocess.Popen(
            [exe, "--config", str(config), "publish", "--record", str(record), "--results", str(results),
             "--variant", "leaf", "--version", version, "--release-record", str(tmp_path / f"{n}.json")],
            env={**os.environ, "HJK_STATE_DIR": str(tmp_path / f"state-{n}")},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, (digest, (config, record, results)) in enumerate(runs.items())
    }
    ended = {digest: (proc.wait(timeout=600), proc.communicate()[1]) for digest, proc in started.items()}
    winners = [d for d, (code, _) in ended.items() if code == 0]
    losers = [d for d, (code, _) in ended.items() if code != 0]
    assert len(winners) == 1 and len(losers) == 1, ended
    (loser_err,) = [ended[d][1] for d in losers]
    assert tag in loser_err and "Traceback" not in loser_err, loser_err
    assert oci.lookup(tag) == winners[0]
