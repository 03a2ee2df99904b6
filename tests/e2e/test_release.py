"""The real variants, end to end: built for both platforms, smoke-tested, published."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from builder.engine import cosign, oci
from builder.engine.extra_ca import SYSTEM_EXTRA_DIR
from builder.engine.state import STATE_ENV
from tests.conftest import RUN_ID, TEST_LABEL, npm_ls_packages
from tests.e2e.conftest import Release

VARIANTS = ("base", "systemd", "dind")
PLATFORMS = {"linux/amd64", "linux/arm64"}


def test_every_variant_is_published_with_both_platforms(released: Release) -> None:
    repository = released.build.repository
    for variant in VARIANTS:
        index = oci.inspect(f"{repository}:{variant}")
        assert set(index.platforms) == PLATFORMS, variant
        assert index.digest == released.build.variant(variant).digest
    assert oci.inspect(f"{repository}:latest").digest == released.build.variant("base").digest
    assert f"{repository}:base@sha256:" in released.stdout  # the pinned reference to copy


def test_every_image_passed_its_smoke_tests(released: Release) -> None:
    results = released.results
    assert {(i.variant, i.platform) for i in results.images} == {(v, p) for v in VARIANTS for p in PLATFORMS}
    for image in results.images:
        assert image.passed, f"{image.variant} {image.platform}: {[c for c in image.checks if c.status == 'failed']}"
    dind_checks = {c.name for c in next(i for i in results.images if i.variant == "dind").checks}
    # dind passes every base and systemd check as well as its own
    assert {"developer is uid and gid 1000", "systemd is PID 1", "developer is in the docker group"} <= dind_checks
    assert any(name.startswith("dind: inner engine") for name in dind_checks)


def test_base_runs_the_way_headjack_runs_it(released: Release, tmp_path: Path) -> None:
    build = next(b for b in released.build.builds_of("base") if b.platform == "linux/amd64")
    image = f"{released.build.repository}@{build.digest}"
    tmp_path.chmod(0o777)
    cid = subprocess.run(
        ["docker", "run", "-d", "--label", f"{TEST_LABEL}={RUN_ID}", "-v", f"{tmp_path}:/workspace",
         image, "sleep", "infinity"], capture_output=True, text=True, check=True,
    ).stdout.strip()
    try:
        for cli in ("claude", "gemini", "codex"):
            proc = subprocess.run(["docker", "exec", "-w", "/workspace", cid, cli, "--version"],
                                  capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, f"{cli} --version: {proc.stdout}{proc.stderr}"
        whoami = subprocess.run(["docker", "exec", cid, "id", "-un"], capture_output=True, text=True, check=True)
        assert whoami.stdout.strip() == "developer"
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)


def _ca_markers() -> list[bytes]:
    """A distinctive line of each extra CA certificate the builds were given."""
    markers = []
    for cert in sorted(SYSTEM_EXTRA_DIR.rglob("*.crt")) if SYSTEM_EXTRA_DIR.is_dir() else []:
        body = [line for line in cert.read_text().splitlines() if line and not line.startswith("-----")]
        if len(body) > 3:
            markers.append(body[len(body) // 2].encode())
    return markers


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_no_layer_contains_the_extra_ca(released: Release, platform: str) -> None:
    markers = _ca_markers()
    assert markers, "this host has no extra CA: the check would prove nothing"
    build = next(b for b in released.build.builds_of("base") if b.platform == platform)
    image = f"{released.build.repository}@{build.digest}"
    subprocess.run(["docker", "pull", "-q", "--platform", platform, image], capture_output=True, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        subprocess.run(["docker", "save", "-o", str(archive), image], check=True)
        with tarfile.open(archive) as saved:
            layers = [m for m in saved.getmembers() if m.name.endswith("layer.tar")]
            assert layers
            for member in layers:
                blob = saved.extractfile(member)
                assert blob is not None
                with tarfile.open(fileobj=blob) as layer:
                    for entry in layer:
                        if not entry.isfile():
                            continue
                        content = layer.extractfile(entry)
                        data = content.read() if content else b""
                        for marker in markers:
                            assert marker not in data, f"extra CA found in {entry.name} ({member.name})"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_sbom_of_base_is_complete_and_valid(released: Release, platform: str) -> None:
    """Read as its users get it: the signed attestations on the published digest, verified
    with the key the local release signed with (a digest reused by an earlier release
    carries that release's too: each must hold)."""
    build = next(b for b in released.build.builds_of("base") if b.platform == platform)
    image = f"{released.build.repository}@{build.digest}"
    public = Path(os.environ[STATE_ENV]) / "keys" / "cosign.pub"
    statements = cosign.attestations(image, cosign.SBOM_TYPE, public)
    assert statements, f"no SBOM attestation on {image}"
    tree = json.loads(subprocess.run(
        ["docker", "run", "--rm", "--platform", platform, "--user", "0", "--label", f"{TEST_LABEL}={RUN_ID}",
         "--entrypoint", "sh", image, "-c", "npm ls --all --global --long --json 2>/dev/null || true"],
        capture_output=True, text=True, check=True).stdout)
    for statement in statements:
        sbom = statement["predicate"]
        assert isinstance(sbom, dict)
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is None
        assert sbom["metadata"]["component"]["version"] == build.digest
        listed = {f"{c['name']}@{c['version']}" for c in sbom["components"]
                  if c.get("purl", "").startswith("pkg:npm/")}
        assert listed == npm_ls_packages(tree)
        files = {c["name"]: c for c in sbom["components"] if c["type"] == "file"}
        for native in ("/claude", "/codex"):
            found = [c for name, c in files.items() if name.endswith(native)]
            assert found and all(len(c["hashes"][0]["content"]) == 64 for c in found), \
                f"no {native} executable listed"
