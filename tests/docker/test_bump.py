"""`bump` against the real npm registry and PyPI: old pins move to the newest releases old
enough, the variant file keeps its comments, the lock matches, the bumped variant builds;
a package the registry doesn't know is an error naming the tool, and the others still move."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from builder.model.records import BuildRecord, load
from tests.conftest import PROJECT_DIR, RUN_ID, hjk
from tests.docker.conftest import FixtureBuild, namespaced

IS_NUMBER_6 = "62589f25115042c4d34863bc8e6ab4790a8920b811949c30e0ebc5733aca66cb"

BUMPABLE = f"""\
# Two old pins for `bump` to move; this comment must survive it.
name: bumpable
parent: root
template: variant.Dockerfile.j2
packages: [curl, python3-venv]
tools:
  - {{name: cowsay, source: pypi, version: "5.0"}}   # a PyPI tool in its own virtualenv
  - name: is-number
    source: archive
    version: 6.0.0
    url: https://registry.npmjs.org/is-number/-/is-number-6.0.0.tgz
    sha256: {IS_NUMBER_6}
    links: {{is-number: index.js}}
    feed: npm:is-number   # new releases from the npm registry
"""


def newest(url: str, path: list[str]) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        data = json.load(response)
    for key in path:
        data = data[key]
    return str(data)


def test_bump_moves_old_pins_keeps_comments_matches_the_lock_and_builds(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    overlay = namespaced(tmp_path, f"bump-{RUN_ID}")
    # the newest release is expected, even one published yesterday (min_age is unit-tested)
    overlay.write_text(overlay.read_text() + "bump:\n  min_age: 0h\n")
    variant = overlay.parent / "variants" / "bumpable.yaml"
    variant.write_text(BUMPABLE)
    hjk("--config", str(overlay), "lock")

    proc = hjk("--config", str(overlay), "bump", "--only", "cowsay", "--only", "is-number", "--json")
    bumps = {b["tool"]: b for b in json.loads(proc.stdout)}
    cowsay = newest("https://pypi.org/pypi/cowsay/json", ["info", "version"])
    is_number = newest("https://registry.npmjs.org/is-number", ["dist-tags", "latest"])
    assert (bumps["cowsay"]["target"], bumps["is-number"]["target"]) == (cowsay, is_number)
    text = variant.read_text()
    assert "# Two old pins for `bump` to move; this comment must survive it." in text
    assert f'{{name: cowsay, source: pypi, version: "{cowsay}"}}   # a PyPI tool' in text
    assert f"version: {is_number}\n" in text and f"is-number-{is_number}.tgz" in text
    assert IS_NUMBER_6 not in text and bumps["is-number"]["sha256"] in text
    # the bump's lock against the variant files (this namespace has no root in the registry yet)
    assert "is current" in hjk("--config", str(overlay), "lock", "--check", "--offline").stderr

    record = tmp_path / "bumped.json"
    hjk("--config", str(overlay), "build", "--variant", "bumpable", "--platform", "linux/amd64",
        "--registry", fixture_build.registry.address, "--record", str(record))
    (built,) = load(record, BuildRecord).builds
    assert built.status == "built"


def test_an_unknown_package_is_an_error_naming_it_and_the_others_still_move(tmp_path: Path) -> None:
    overlay = namespaced(tmp_path, f"bump-404-{RUN_ID}")
    variant = overlay.parent / "variants" / "bumpable.yaml"
    variant.write_text(BUMPABLE.replace(
        '  - {name: cowsay, source: pypi, version: "5.0"}',
        '  - {name: cowsay, source: pypi, version: "5.0"}\n'
        f'  - {{name: ghost, source: npm, package: "@hjk-none/ghost-{RUN_ID}", version: 1.0.0}}'))
    proc = hjk("--config", str(overlay), "bump", check=False)
    assert proc.returncode == 1
    assert "bumpable/ghost: the npm registry answered 404 Not Found for https://registry.npmjs.org/" in proc.stderr
    assert 'version: "5.0"' not in variant.read_text(), "the other tools did not move"


def test_a_dry_run_on_the_real_variants_prints_the_table_and_changes_nothing() -> None:
    before = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_DIR, capture_output=True, text=True).stdout
    proc = hjk("bump", "--dry-run")
    assert "hjk-images bump" in proc.stdout and "claude" in proc.stdout
    after = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_DIR, capture_output=True, text=True).stdout
    assert after == before
