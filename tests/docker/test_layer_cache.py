"""Layer cache kept in the registry: every build exports it (inline metadata with the docker
driver) and imports the variant's last one for its platform; a missing or unusable cache is
said in one line and never fails the build."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.engine import oci
from builder.model.records import BuildRecord, load
from builder.stages.build import INLINE_CACHE_KEY
from tests.conftest import RUN_ID, hjk
from tests.docker.conftest import FixtureBuild, namespaced


def build(overlay: Path, registry: str, variant: str, record: Path) -> tuple[str, BuildRecord]:
    proc = hjk("--config", str(overlay), "build", "--variant", variant, "--platform", "linux/amd64",
               "--registry", registry, "--record", str(record))
    return proc.stderr, load(record, BuildRecord)


def test_builds_export_and_import_layer_cache_through_the_registry(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    registry = fixture_build.registry.address
    namespace = f"cache-{RUN_ID}"
    overlay = namespaced(tmp_path, namespace)
    repository = f"{registry}/{namespace}/images"
    cache = f"{repository}:cache-tiny-amd64"

    said, first = build(overlay, registry, "tiny", tmp_path / "first.json")
    assert f"no layer cache imported: {cache} not found" in said
    assert first.layer_cache == "inline" and first.builds[0].status == "built"
    assert INLINE_CACHE_KEY in oci.raw_config(cache), "the pushed image carries no inline cache metadata"

    fragment = tmp_path / namespace / "variants" / "fragments" / "tiny.j2"
    fragment.write_text(fragment.read_text() + "RUN echo changed > /etc/tiny-changed\n")
    said, second = build(overlay, registry, "tiny", tmp_path / "second.json")
    (changed,) = second.builds
    assert changed.status == "built" and changed.layer_cache == f"layer cache from {cache}"
    assert f"importing cache manifest from {cache}" in Path(changed.log or "").read_text()
    assert oci.lookup(cache) == changed.digest, "the cache tag did not follow the last build"

    # a cache source without inline metadata (the root, written without BuildKit)
    leaf_cache = f"{repository}:cache-leaf-amd64"
    root = f"{registry}/{namespace}/images-root@{first.root.platforms['linux/amd64']}"
    subprocess.run(["docker", "buildx", "imagetools", "create", "-t", leaf_cache, root],
                   check=True, capture_output=True)
    said, leaf = build(overlay, registry, "leaf", tmp_path / "leaf.json")
    assert f"no layer cache imported: {leaf_cache} has no inline cache metadata" in said
    assert next(b for b in leaf.builds if b.variant == "leaf").status == "built"
