"""SBOM documents: dpkg's database parsed, every source of software listed with its identity."""

from __future__ import annotations

import json

from builder.engine.contents import Contents, parse_dpkg_status
from builder.model.config import load_settings
from builder.model.variants import load_variants
from builder.stages.sbom import make_sbom
from tests.conftest import PROJECT_DIR

STATUS = """Package: git
Status: install ok installed
Architecture: arm64
Version: 1:2.47.3-0+deb13u1
Description: fast, scalable, distributed revision control system
 continued description line: not a field

Package: removed-thing
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0
"""


def test_dpkg_status_keeps_installed_packages_only() -> None:
    assert parse_dpkg_status(STATUS) == [("git", "1:2.47.3-0+deb13u1", "arm64")]


def test_sbom_lists_debian_npm_and_archive_tools_with_checksums() -> None:
    settings = load_settings(project_dir=PROJECT_DIR)
    base = load_variants(settings.variants_dir, list(settings.config.platforms))["base"]
    reference = "localhost:5000/gilmanlab/headjack@sha256:" + "b" * 64
    document = json.loads(make_sbom(base, "linux/arm64", reference, Contents(
        debian=[("git", "1:2.47.3-0+deb13u1", "arm64")], npm=[("@openai/codex", "0.171.0")],
    )))
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["version"] == "sha256:" + "b" * 64
    purls = {c["purl"] for c in document["components"]}
    assert "pkg:deb/debian/git@1:2.47.3-0%2Bdeb13u1?arch=arm64" in purls
    assert "pkg:npm/%40openai/codex@0.171.0" in purls
    npm_tool = next(c for c in document["components"] if c["name"] == "npm")
    assert npm_tool["hashes"] == [{"alg": "SHA-256", "content": next(t.sha256 for t in base.tools if t.name == "npm")}]
    assert document["dependencies"][0]["ref"] == reference
