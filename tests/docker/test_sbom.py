"""SBOMs: one per platform image, read from the image itself, attached in the registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild


def test_publish_attaches_a_cyclonedx_sbom_per_platform(
    fixture_build: FixtureBuild, passing_results: Path, tmp_path: Path,
) -> None:
    proc = hjk("--config", str(FIXTURE_CONFIG), "publish", "--record", str(fixture_build.record_path),
               "--results", str(passing_results), "--variant", "leaf",
               "--release-record", str(tmp_path / "release.json"))
    assert proc.returncode == 0, proc.stderr
    record = fixture_build.record
    for build in record.builds_of("leaf"):
        arch = build.platform.split("/")[1]
        document = json.loads((tmp_path / "sbom" / f"leaf-{arch}.cdx.json").read_text())
        assert document["bomFormat"] == "CycloneDX"
        debs = {c["name"]: c for c in document["components"] if c["purl"].startswith("pkg:deb/")}
        assert "dpkg" in debs and "libc6" in debs
        assert debs["libc6"]["purl"].endswith(f"arch={arch}")  # read from that platform's image
        reference = f"{record.repository}@{build.digest}"
        assert f"attached to {reference} as artifact" in proc.stderr
        downloaded = subprocess.run(
            ["cosign", "download", "sbom", "--allow-insecure-registry", reference],
            capture_output=True, text=True, check=True,
        ).stdout
        assert json.loads(downloaded)["metadata"]["component"]["version"] == build.digest
