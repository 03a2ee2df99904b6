"""Same inputs, same digests, on every machine: the root made twice from nothing gives one
digest, a machine that finds it runs no mmdebstrap, a tag with other content is not
trusted, and a fresh machine pointed at a registry that holds a build builds nothing.

A "fresh machine" is a state folder of its own (no cached root file systems, no
records) and an engine without the registry's images."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from builder.engine import oci
from builder.model.config import RootBootstrap
from builder.model.records import BuildRecord, load
from builder.model.root_tree import root_tree
from builder.stages import root
from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, RUN_ID, forget_local_images, hjk
from tests.docker.conftest import FixtureBuild, namespaced

LOCK = yaml.safe_load((FIXTURE_CONFIG.parent / "images.lock.yaml").read_text())
PINNED_AMD64 = LOCK["root"]["images"]["linux/amd64"]


def machine(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of a machine that has never run the factory."""
    return {"HJK_STATE_DIR": str(tmp_path / f"machine-{name}")}


def bootstrap(overlay: Path, registry: str, env: dict[str, str] | None = None, *extra: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    return hjk("--config", str(overlay), "root", "bootstrap", "--registry", registry, "--platform", "linux/amd64",
               *extra, env=env, check=check)


def ran_mmdebstrap(env: dict[str, str]) -> bool:
    return any((Path(env["HJK_STATE_DIR"]) / "logs").glob("mmdebstrap-*.log"))


def test_two_machines_make_the_same_root_and_a_third_finds_it(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    registry = fixture_build.registry.address
    first, second = machine(tmp_path, "one"), machine(tmp_path, "two")
    made_one = bootstrap(namespaced(tmp_path, f"repro-a-{RUN_ID}"), registry, first)
    made_two = bootstrap(namespaced(tmp_path, f"repro-b-{RUN_ID}"), registry, second)
    for proc, env in ((made_one, first), (made_two, second)):
        assert "trixie/amd64: made" in proc.stderr and ran_mmdebstrap(env)
    digests = {proc.stdout.strip().rsplit("@", 1)[1] for proc in (made_one, made_two)}
    assert digests == {PINNED_AMD64}, "two machines made different roots, or not the locked one"

    third = machine(tmp_path, "three")
    found = bootstrap(tmp_path / f"repro-a-{RUN_ID}" / "overlay.yaml", registry, third)
    assert "trixie/amd64: in the registry" in found.stderr and "nothing to make" in found.stderr
    assert not ran_mmdebstrap(third)
    assert found.stdout.strip().endswith(PINNED_AMD64)
    # a runner holding one platform never writes the shared index
    assert oci.lookup(f"{registry}/repro-a-{RUN_ID}/images-root:trixie") is None


def test_a_root_tag_with_other_content_is_not_trusted_and_check_names_the_platform(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    registry = fixture_build.registry.address
    overlay = namespaced(tmp_path, f"repro-c-{RUN_ID}", with_lock=False)
    repository = f"{registry}/repro-c-{RUN_ID}/images-root"
    boot = RootBootstrap(**yaml.safe_load((PROJECT_DIR / "factory.yaml").read_text())["root"]["bootstrap"])
    tag = root.key_tag(repository, root.RootInputs(boot, root_tree(PROJECT_DIR / "dockerfiles")), "amd64")
    tiny = next(b for b in fixture_build.record.builds_of("tiny") if b.platform == "linux/amd64")
    impostor = f"{fixture_build.record.repository}@{tiny.digest}"
    subprocess.run(["docker", "buildx", "imagetools", "create", "-t", tag, impostor], check=True, capture_output=True)
    planted = oci.lookup(tag)

    check = bootstrap(overlay, registry, None, "--check", check=False)
    assert check.returncode == 1
    assert f"linux/amd64: made {PINNED_AMD64} from scratch, the registry's {tag} is {planted}" in check.stderr

    fixed = bootstrap(overlay, registry)
    assert "was not written from these inputs" in fixed.stderr and "not trusted" in fixed.stderr
    assert fixed.stdout.strip().endswith(PINNED_AMD64) and oci.lookup(tag) == PINNED_AMD64
    again = bootstrap(overlay, registry, None, "--check")
    assert "same as the registry's" in again.stderr


def test_a_fresh_machine_reuses_every_image_the_registry_holds(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    registry = fixture_build.registry.address
    forget_local_images(registry)
    fresh = machine(tmp_path, "fresh")
    record_path = tmp_path / "fresh.json"
    hjk("--config", str(FIXTURE_CONFIG), "build", "--registry", registry, "--record", str(record_path), env=fresh)
    record, first = load(record_path, BuildRecord), fixture_build.record
    assert record.count("built") == 0 and record.count("reused") == len(first.builds)
    assert {b.key: b.digest for b in record.builds} == {b.key: b.digest for b in first.builds}
    assert {v.name: v.digest for v in record.variants} == {v.name: v.digest for v in first.variants}
    assert not ran_mmdebstrap(fresh)
