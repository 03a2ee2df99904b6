"""SBOM documents: dpkg's database parsed, every source of software listed with its identity."""

from __future__ import annotations

import json

from builder.engine.contents import Contents, NpmPackage, parse_contents, parse_dpkg_status
from builder.model.config import load_settings
from builder.stages.sbom import make_sbom
from tests.conftest import PROJECT_DIR, load_variants

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
        debian=[("git", "1:2.47.3-0+deb13u1", "arm64")],
        npm=[NpmPackage("@openai/codex", "0.171.0", "/usr/local/lib/node_modules/@openai/codex")],
    )))
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["version"] == "sha256:" + "b" * 64
    purls = {c["purl"] for c in document["components"]}
    assert "pkg:deb/debian/git@1:2.47.3-0%2Bdeb13u1?arch=arm64" in purls
    assert "pkg:npm/%40openai/codex@0.171.0" in purls
    npm_tool = next(c for c in document["components"] if c["name"] == "npm")
    assert npm_tool["hashes"] == [{"alg": "SHA-256", "content": next(t.sha256 for t in base.tools if t.name == "npm")}]
    assert document["dependencies"][0]["ref"] == reference


NODE_MODULES = "/usr/local/lib/node_modules"
SCRIPT_OUTPUT = f"""{STATUS}
@@npm@@
@@package@@ {NODE_MODULES}/agent/package.json
{{"name": "agent", "version": "1.0.0", "dependencies": {{"left": "^1", "shared": "^2"}},
 "optionalDependencies": {{"native-linux-x64": "1.0.0"}}}}
@@package@@ {NODE_MODULES}/agent/node_modules/left/package.json
{{"name": "left", "version": "1.2.0", "dependencies": {{"shared": "^1"}}}}
@@package@@ {NODE_MODULES}/agent/node_modules/left/node_modules/shared/package.json
{{"name": "shared", "version": "1.9.0"}}
@@package@@ {NODE_MODULES}/agent/node_modules/shared/package.json
{{"name": "shared", "version": "2.0.0"}}
@@package@@ {NODE_MODULES}/other/package.json
{{"name": "other", "version": "3.0.0", "dependencies": {{"shared": "^2"}}}}
@@package@@ {NODE_MODULES}/other/node_modules/shared/package.json
{{"name": "shared", "version": "2.0.0"}}
@@package@@ {NODE_MODULES}/other/test/fixture/package.json
not json at all
@@pypi@@
httpie/lib/python3.13/site-packages/httpie-3.2.4.dist-info/METADATA\tName: httpie\tVersion: 3.2.4\t
httpie/lib/python3.13/site-packages/pip-25.1.dist-info/METADATA\tName: pip\tVersion: 25.1\t
@@languages@@
python\t3.12.8
rust\t1.83.0-x86_64-unknown-linux-gnu
@@executables@@
421000000\t{"c" * 64}  /usr/local/lib/node_modules/agent/bin/agent-native
"""


def test_every_source_is_read_from_the_script_output_nested_npm_packages_too() -> None:
    contents = parse_contents(SCRIPT_OUTPUT)
    assert contents.debian == [("git", "1:2.47.3-0+deb13u1", "arm64")]
    assert [(p.name, p.version) for p in contents.npm] == [
        ("agent", "1.0.0"), ("left", "1.2.0"), ("shared", "1.9.0"), ("shared", "2.0.0"), ("other", "3.0.0"),
        ("shared", "2.0.0"),
    ]
    assert contents.pypi == [("httpie", "httpie", "3.2.4"), ("httpie", "pip", "25.1")]
    assert contents.languages == [("python", "3.12.8"), ("rust", "1.83.0-x86_64-unknown-linux-gnu")]
    (native,) = contents.executables
    assert (native.path, native.size, native.sha256) == (f"{NODE_MODULES}/agent/bin/agent-native", 421000000, "c" * 64)


def test_npm_edges_resolve_as_node_does_and_components_are_unique_by_name_and_version() -> None:
    settings = load_settings(project_dir=PROJECT_DIR)
    base = load_variants(settings.variants_dir, list(settings.config.platforms))["base"]
    reference = "localhost:5000/gilmanlab/headjack@sha256:" + "d" * 64
    document = json.loads(make_sbom(base, "linux/amd64", reference, parse_contents(SCRIPT_OUTPUT)))
    npm = sorted(c["bom-ref"] for c in document["components"] if c.get("purl", "").startswith("pkg:npm/"))
    assert npm == ["pkg:npm/agent@1.0.0", "pkg:npm/left@1.2.0", "pkg:npm/other@3.0.0", "pkg:npm/shared@1.9.0",
                   "pkg:npm/shared@2.0.0"]
    edges = {d["ref"]: sorted(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert edges["pkg:npm/agent@1.0.0"] == ["pkg:npm/left@1.2.0", "pkg:npm/shared@2.0.0"]  # the optional one is absent
    assert edges["pkg:npm/left@1.2.0"] == ["pkg:npm/shared@1.9.0"]  # its own nested copy wins
    assert edges["pkg:npm/other@3.0.0"] == ["pkg:npm/shared@2.0.0"]
    kinds = {c["name"]: c for c in document["components"]}
    assert kinds["httpie"]["purl"] == "pkg:pypi/httpie@3.2.4#opt/pypi/httpie"
    assert kinds["python"]["type"] == "framework" and kinds["python"]["version"] == "3.12.8"
    native = kinds[f"{NODE_MODULES}/agent/bin/agent-native"]
    assert native["type"] == "file" and native["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
