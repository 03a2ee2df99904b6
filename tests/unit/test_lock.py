"""The lockfile without a registry: written, checked, refused when stale or malformed."""

from __future__ import annotations

from pathlib import Path

import yaml

from builder.stages import lock
from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, fork_variants, hjk


def test_the_committed_locks_are_current() -> None:
    assert "is current" in hjk("lock", "--check", "--offline").stderr
    assert "is current" in hjk("--config", str(FIXTURE_CONFIG), "lock", "--check", "--offline").stderr


def fork(tmp_path: Path) -> Path:
    return fork_variants(tmp_path, PROJECT_DIR / "variants", "", with_lock=True)


def test_a_variant_file_change_makes_check_fail_with_a_diff(tmp_path: Path) -> None:
    overlay = fork(tmp_path)
    base = tmp_path / "variants" / "base.yaml"
    base.write_text(base.read_text().replace("version: 2.1.332", "version: 2.1.331"))
    proc = hjk("--config", str(overlay), "lock", "--check", "--offline", check=False)
    assert proc.returncode == 1
    assert "-      version: 2.1.332" in proc.stdout and "+      version: 2.1.331" in proc.stdout
    assert "images.lock.yaml is stale: run `hjk-images lock --update`" in proc.stderr


def test_a_hand_broken_lockfile_is_refused_and_left_alone(tmp_path: Path) -> None:
    overlay = fork(tmp_path)
    lockfile = tmp_path / "images.lock.yaml"
    lockfile.write_text("schema: 1\ntools: [not, a, mapping]\n")
    proc = hjk("--config", str(overlay), "lock", "--check", "--offline", check=False)
    assert proc.returncode == 1
    assert f"{lockfile}: root: required key is missing" in proc.stderr  # the file and the key named
    assert f"{lockfile}: tools: Input should be a valid dictionary" in proc.stderr
    assert lockfile.read_text() == "schema: 1\ntools: [not, a, mapping]\n"


def test_a_tool_version_that_does_not_exist_fails_and_leaves_the_lock_untouched(tmp_path: Path) -> None:
    overlay = fork(tmp_path)
    lockfile = tmp_path / "images.lock.yaml"
    before = lockfile.read_text()
    base = tmp_path / "variants" / "base.yaml"
    text = base.read_text()
    base.write_text(text.replace('"@openai/codex"\n    version: 0.171.0', '"@openai/codex"\n    version: 0.0.999999'))
    proc = hjk("--config", str(overlay), "lock", check=False)
    assert proc.returncode == 1
    assert "tool base/codex: @openai/codex 0.0.999999 does not exist on the npm registry" in proc.stderr
    assert lockfile.read_text() == before


def test_update_reports_what_moved(tmp_path: Path) -> None:
    overlay = fork(tmp_path)
    base = tmp_path / "variants" / "base.yaml"
    text = base.read_text()
    base.write_text(text.replace('"@openai/codex"\n    version: 0.171.0', '"@openai/codex"\n    version: 0.169.0'))
    # one tool: the root's digests are made again only for the root (docker tier)
    proc = hjk("--config", str(overlay), "lock", "--update", "--only", "codex")
    assert proc.stdout.splitlines() == ["tool base/codex: 0.171.0 -> 0.169.0"]
    assert "is current" in hjk("--config", str(overlay), "lock", "--check", "--offline").stderr


BOOT = {"suite": "trixie", "mirror": "http://deb.debian.org/debian", "packages": ["ca-certificates"]}


def root_entry(digest: str, libc: str) -> dict[str, object]:
    return {"root": {"bootstrap": BOOT, "images": {"linux/amd64": digest},
                     "packages": {"linux/amd64": {"bash": "5.2", "libc6": libc}}}}


def test_a_moved_root_names_the_packages_that_moved_it() -> None:
    moved = lock.moves(root_entry("sha256:a", "2.41-12"), root_entry("sha256:b", "2.41-13"))
    assert moved == ["root linux/amd64: sha256:a -> sha256:b (libc6 2.41-12 -> 2.41-13)"]
    assert lock.moves(root_entry("sha256:a", "1"), root_entry("sha256:a", "1")) == []


def test_the_committed_lock_pins_a_root_digest_per_platform() -> None:
    for lockfile in (PROJECT_DIR / "images.lock.yaml", FIXTURE_CONFIG.parent / "images.lock.yaml"):
        root = yaml.safe_load(lockfile.read_text())["root"]
        assert set(root["images"]) == {"linux/amd64", "linux/arm64"}
        assert all(d.startswith("sha256:") and len(d) == 71 for d in root["images"].values())
        assert set(root["packages"]) == set(root["images"]) and "libc6" in root["packages"]["linux/amd64"]


def test_changing_the_root_inputs_makes_the_pinned_digests_stale(tmp_path: Path) -> None:
    overlay = fork_variants(tmp_path, PROJECT_DIR / "variants",
                            "root:\n  bootstrap:\n    packages: [ca-certificates, vim-tiny]\n", with_lock=True)
    proc = hjk("--config", str(overlay), "lock", "--check", "--offline", check=False)
    assert proc.returncode == 1
    assert "+    - vim-tiny" in proc.stdout and "-  images:" in proc.stdout
