"""The lock against a real registry: an ordinary root reference pinned by digest, moved, refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.engine import oci
from builder.model.records import BuildRecord, load
from tests.conftest import FIXTURE_CONFIG, fork_variants, hjk
from tests.docker.conftest import FixtureBuild


def reference_fork(tmp_path: Path, reference: str) -> Path:
    """Fixture variants whose root is an ordinary reference (as on machines that can pull)."""
    return fork_variants(tmp_path, FIXTURE_CONFIG.parent / "variants",
                         FIXTURE_CONFIG.read_text() + f"root:\n  source: reference\n  reference: {reference}\n")


def retag(target: str, source: str) -> None:
    subprocess.run(["docker", "buildx", "imagetools", "create", "-t", target, source], check=True, capture_output=True)


def locked_reference_fork(reference: str, root: str, tmp_path: Path) -> Path:
    """REFERENCE tagged at ROOT, a fork whose root is that reference, and its lock written."""
    retag(reference, root)
    overlay = reference_fork(tmp_path, reference)
    hjk("--config", str(overlay), "lock")
    return overlay


def test_check_fails_when_the_root_moves_and_update_reports_the_move(
    fixture_build: FixtureBuild, root_in_registry: str, tmp_path: Path,
) -> None:
    repo = fixture_build.record.repository
    reference = f"{repo}-root:lock-test"
    overlay = locked_reference_fork(reference, root_in_registry, tmp_path)
    assert "is current" in hjk("--config", str(overlay), "lock", "--check").stderr
    old = oci.inspect(reference).digest
    retag(reference, f"{repo}@{fixture_build.record.variant('tiny').digest}")  # the tag moves
    new = oci.inspect(reference).digest
    check = hjk("--config", str(overlay), "lock", "--check", check=False)
    assert check.returncode == 1
    assert f"-  index: {old}" in check.stdout and f"+  index: {new}" in check.stdout
    update = hjk("--config", str(overlay), "lock", "--update", "--only", "root")
    assert f"root: {reference}@{old} -> {reference}@{new}" in update.stdout


def test_builds_use_the_locked_digest_and_refuse_a_stale_lock(
    fixture_build: FixtureBuild, root_in_registry: str, tmp_path: Path,
) -> None:
    overlay = locked_reference_fork(f"{fixture_build.record.repository}-root:lock-build", root_in_registry, tmp_path)
    record = tmp_path / "r.json"
    hjk("--config", str(overlay), "build", "--variant", "tiny", "--registry", fixture_build.registry.address,
        "--record", str(record))
    assert oci.inspect(root_in_registry).digest in record.read_text()
    (tmp_path / "variants" / "tiny.yaml").write_text(
        (tmp_path / "variants" / "tiny.yaml").read_text()
        + "tools:\n  - {name: jq, source: apt, version: 1.7.1}\n"
    )
    stale = hjk("--config", str(overlay), "build", "--variant", "tiny", "--registry", fixture_build.registry.address,
                check=False)
    assert stale.returncode == 1
    assert "images.lock.yaml is stale for tiny/jq: run `hjk-images lock`" in stale.stderr


def test_lock_refuses_a_root_without_a_needed_platform(
    fixture_build: FixtureBuild, root_in_registry: str, tmp_path: Path,
) -> None:
    repo = fixture_build.record.repository
    amd64_only = oci.inspect(root_in_registry).platforms["linux/amd64"]
    reference = f"{repo}-root:amd64-only"
    retag(reference, f"{repo}-root@{amd64_only}")
    overlay = reference_fork(tmp_path, reference)
    proc = hjk("--config", str(overlay), "lock", check=False)
    assert proc.returncode == 1
    assert f"root image {reference} has no image for linux/arm64" in proc.stderr
    assert not (tmp_path / "images.lock.yaml").exists()


def test_installed_debian_packages_are_recorded_and_drift_is_reported(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    import yaml

    overlay = fork_variants(tmp_path, FIXTURE_CONFIG.parent / "variants", FIXTURE_CONFIG.read_text(), with_lock=True)
    first = hjk("--config", str(overlay), "lock", "--record-debian", str(fixture_build.record_path))
    lockfile = tmp_path / "images.lock.yaml"
    recorded = yaml.safe_load(lockfile.read_text())["debian"]
    assert recorded["tiny linux/arm64"]["dpkg"] and recorded["leaf linux/amd64"]["libc6"]
    assert "Debian packages of 10 images recorded" in first.stderr
    # the record is not a pin: the lock stays current
    assert "is current" in hjk("--config", str(overlay), "lock", "--check",
                               "--registry", fixture_build.registry.address).stderr
    data = yaml.safe_load(lockfile.read_text())
    real = data["debian"]["tiny linux/amd64"]["dpkg"]
    data["debian"]["tiny linux/amd64"]["dpkg"] = "0.0-old"
    lockfile.write_text(yaml.safe_dump(data))
    again = hjk("--config", str(overlay), "lock", "--record-debian", str(fixture_build.record_path))
    assert again.stdout.splitlines() == [f"debian tiny linux/amd64 dpkg: 0.0-old -> {real}"]


def test_the_lock_holds_the_bootstrapped_root(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    """Pins the registry doesn't hold fail `lock --check` (offline it says it checked the inputs
    alone); a build refuses to stand on a root other than the pinned one, pushing nothing,
    unless --allow-root-drift, which the build record names."""
    import yaml

    overlay = fork_variants(tmp_path, FIXTURE_CONFIG.parent / "variants", FIXTURE_CONFIG.read_text(), with_lock=True)
    registry = fixture_build.registry.address
    lockfile = tmp_path / "images.lock.yaml"
    data = yaml.safe_load(lockfile.read_text())
    real = data["root"]["images"]["linux/amd64"]
    zero = "sha256:" + "0" * 64
    data["root"]["images"]["linux/amd64"] = zero
    lockfile.write_text(yaml.safe_dump(data))

    check = hjk("--config", str(overlay), "lock", "--check", "--registry", registry, check=False)
    assert check.returncode == 1, check.stderr
    assert f"root linux/amd64: the lock pins {zero}, " in check.stdout and real in check.stdout
    assert "the root pins don't match" in check.stderr
    offline = hjk("--config", str(overlay), "lock", "--check", "--offline")
    assert "offline: no registry was asked" in offline.stderr

    build = ["--config", str(overlay), "build", "--variant", "tiny", "--platform", "linux/amd64",
             "--registry", registry, "--record", str(tmp_path / "r.json")]
    refused = hjk(*build, check=False)
    assert refused.returncode == 1 and not (tmp_path / "r.json").exists()
    assert f"root linux/amd64 is {real}, the lock pins {zero}" in refused.stderr
    assert "run `hjk-images lock --update --only root`" in refused.stderr and "--allow-root-drift" in refused.stderr
    assert "Traceback" not in refused.stderr
    hjk(*build, "--allow-root-drift")
    recorded = load(tmp_path / "r.json", BuildRecord)
    assert recorded.root.platforms["linux/amd64"] == real
    (drift,) = recorded.root.drift
    assert drift.startswith(f"root linux/amd64 is {real}, the lock pins {zero}")
