"""Key-based cosign signing and verification against the local registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild

PASSWORD = "correct horse battery staple"


def key_pair(folder: Path) -> tuple[Path, Path]:
    subprocess.run(["cosign", "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    return folder / "cosign.key", folder / "cosign.pub"


@pytest.fixture(scope="module")
def signed_tiny(fixture_build: FixtureBuild, passing_results: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("keys")
    private, public = key_pair(folder)
    proc = hjk("--config", str(FIXTURE_CONFIG), "publish", "--record", str(fixture_build.record_path),
               "--results", str(passing_results), "--variant", "tiny", "--sign-key", str(private),
               "--release-record", str(folder / "release.json"), env={"COSIGN_PASSWORD": PASSWORD})
    return proc, public, folder


def test_publish_signs_the_index_and_every_platform_image(signed_tiny, fixture_build: FixtureBuild) -> None:  # type: ignore[no-untyped-def]
    proc, public, _ = signed_tiny
    record = fixture_build.record
    index = f"{record.repository}@{record.variant('tiny').digest}"
    assert f"signed {index}" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    for target in [index, *(f"{record.repository}@{b.digest}" for b in record.builds_of("tiny"))]:
        verified = hjk("verify", target, "--key", str(public))
        assert f"verified: {target}" in verified.stdout


def test_a_wrong_key_or_an_unsigned_image_does_not_verify(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    _, public, _ = signed_tiny
    record = fixture_build.record
    _, other_public = key_pair(tmp_path)
    index = f"{record.repository}@{record.variant('tiny').digest}"
    wrong = hjk("verify", index, "--key", str(other_public), check=False)
    assert wrong.returncode == 1 and f"signature of {index} does not verify" in wrong.stderr
    unsigned = f"{record.repository}@{record.variant('broken').digest}"
    proc = hjk("verify", unsigned, "--key", str(public), check=False)
    assert proc.returncode == 1 and f"signature of {unsigned} does not verify" in proc.stderr


def test_with_a_key_the_sbom_is_a_signed_attestation(signed_tiny, fixture_build: FixtureBuild) -> None:  # type: ignore[no-untyped-def]
    proc, public, _ = signed_tiny
    record = fixture_build.record
    build = next(b for b in record.builds_of("tiny") if b.platform == "linux/arm64")
    reference = f"{record.repository}@{build.digest}"
    assert f"tiny-arm64.cdx.json attached to {reference} as attestation" in proc.stderr
    verified = subprocess.run(
        ["cosign", "verify-attestation", "--type", "cyclonedx", "--key", str(public),
         "--insecure-ignore-tlog=true", "--allow-insecure-registry", reference],
        capture_output=True, text=True, check=False,
    )
    assert verified.returncode == 0, verified.stderr
