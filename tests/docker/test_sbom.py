"""SBOMs: one per platform image, read from the image itself, attached in the registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from builder.model.records import BuildRecord, load
from tests.conftest import FIXTURE_CONFIG, RUN_ID, TEST_LABEL, hjk, npm_ls_packages
from tests.docker.conftest import FixtureBuild, namespaced


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


INVENTORY = """\
name: inventory
description: npm packages with nested dependencies and a PyPI tool, for the SBOM cross-check
parent: root
template: variant.Dockerfile.j2
packages: [nodejs, python3-venv, curl]
tools:
  - name: npm
    source: archive
    version: 10.9.2
    url: https://registry.npmjs.org/npm/-/npm-10.9.2.tgz
    sha256: 5cd1e5ab971ea6333f910bc2d50700167c5ef4e66da279b2a3efc874c6b116e4
    links: {npm: bin/npm-cli.js, npx: bin/npx-cli.js}
  - {name: cowsay, source: npm, version: 1.6.0, check: cowsay moo}
  - {name: pyfiglet, source: pypi, version: 1.0.2}
"""


def in_image(reference: str, script: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--user", "0", "--label", f"{TEST_LABEL}={RUN_ID}", "--entrypoint", "sh",
         reference, "-c", script], capture_output=True, text=True, check=True,
    ).stdout


def test_the_sbom_lists_exactly_what_dpkg_npm_and_pip_report_in_the_image(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    registry = fixture_build.registry.address
    overlay = namespaced(tmp_path, f"sbom-{RUN_ID}")
    (overlay.parent / "variants" / "inventory.yaml").write_text(INVENTORY)
    overlay.write_text(overlay.read_text() + "platforms: [linux/amd64]\n")  # amd64 is enough here
    hjk("--config", str(overlay), "lock")
    record, results = tmp_path / "build.json", tmp_path / "test.json"
    hjk("--config", str(overlay), "build", "--variant", "inventory", "--registry", registry, "--record", str(record))
    hjk("--config", str(overlay), "test", "--variant", "inventory", "--record", str(record), "--results", str(results))
    hjk("--config", str(overlay), "publish", "--variant", "inventory", "--record", str(record),
        "--results", str(results), "--release-record", str(tmp_path / "release.json"))
    sbom = json.loads((tmp_path / "sbom" / "inventory-amd64.cdx.json").read_text())
    (build,) = [b for b in load(record, BuildRecord).builds if b.variant == "inventory"]
    reference = f"{load(record, BuildRecord).repository}@{build.digest}"

    def listed(kind: str) -> set[str]:
        return {f"{c['name']}@{c['version']}" for c in sbom["components"] if c.get("purl", "").startswith(kind)}

    dpkg = {line.replace(" ", "@", 1) for line in in_image(reference, "dpkg-query -W -f '${Package} ${Version}\\n'")
            .splitlines()}
    assert listed("pkg:deb/") == dpkg
    npm = npm_ls_packages(json.loads(in_image(reference, "npm ls --all --global --long --json 2>/dev/null || true")))
    assert len(npm) > 5, "cowsay's nested dependencies are missing from npm ls"
    assert listed("pkg:npm/") == npm
    pip = {f"{d['name']}@{d['version']}" for d in json.loads(
        in_image(reference, "/opt/pypi/pyfiglet/bin/pip list --format json 2>/dev/null"))}
    assert listed("pkg:pypi/") == pip and "pyfiglet@1.0.2" in pip
    edges = {d["ref"]: d.get("dependsOn", []) for d in sbom["dependencies"]}
    assert edges["pkg:npm/cowsay@1.6.0"], "the npm dependency edges are missing"
