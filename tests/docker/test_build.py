"""The build engine on fixture variants, both platforms, against a real registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from builder.engine import oci
from builder.engine.registry import EmbeddedRegistry, catalog
from builder.engine.state import STATE_ENV
from builder.model.records import BuildRecord, load
from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, fork_variants, hjk
from tests.docker.conftest import FixtureBuild, fixture_cli, namespaced


def test_build_makes_an_index_per_variant_with_both_platforms(fixture_build: FixtureBuild) -> None:
    record = fixture_build.record
    assert [v.name for v in record.variants] == ["crashing", "initd", "tiny", "broken", "leaf"]
    for variant in record.variants:
        assert variant.digest, f"{variant.name} was not indexed"
        index = oci.inspect(f"{variant.tag}")
        assert index.digest == variant.digest
        assert set(index.platforms) == {"linux/amd64", "linux/arm64"}
        for build in record.builds_of(variant.name):
            assert index.platforms[build.platform] == build.digest
            assert build.size_bytes and build.size_bytes > 0
    # the summary names every build with digest, size and result
    assert "build summary" in fixture_build.stdout and "leaf" in fixture_build.stdout


def test_the_record_says_what_the_builder_did_with_layer_times(fixture_build: FixtureBuild) -> None:
    """Rewritten (SOURCE_DATE_EPOCH) by a BuildKit of 0.13 or later, as the steps left them by an
    older one: the version as `docker buildx inspect` tells it, read here on its own."""
    import re

    said = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"BuildKit version:\s+v?(\d+)\.(\d+)", said, re.IGNORECASE)
    assert found, said
    major, minor = int(found[1]), int(found[2])
    times = fixture_build.record.layer_times
    assert f"BuildKit {major}.{minor}" in times
    rewrites = (major, minor) >= (0, 13)
    assert times.startswith("rewritten to SOURCE_DATE_EPOCH=0" if rewrites else "as each step left them")


def test_children_build_from_their_parents_digest(fixture_build: FixtureBuild) -> None:
    record = fixture_build.record
    for build in record.builds_of("leaf"):
        parent = next(b for b in record.builds_of("tiny") if b.platform == build.platform)
        proc = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", "--format",
             '{{ index .Image.Config.Labels "org.opencontainers.image.base.name" }}',
             f"{record.repository}@{build.digest}"],
            capture_output=True, text=True, check=True,
        )
        assert proc.stdout.strip() == f"{record.repository}@{parent.digest}"


def test_arm64_images_say_aarch64(fixture_build: FixtureBuild) -> None:
    build = next(b for b in fixture_build.record.builds_of("leaf") if b.platform == "linux/arm64")
    arch = subprocess.run(
        ["docker", "run", "--rm", "--label", "io.headjack.images.test-run=arch", "--platform", "linux/arm64",
         f"{fixture_build.record.repository}@{build.digest}", "uname", "-m"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert arch == "aarch64"


def test_second_build_reuses_everything(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    record_path = tmp_path / "again.json"
    fixture_cli(fixture_build.registry, "build", "--record", str(record_path))
    again = load(record_path, BuildRecord)
    assert {b.status for b in again.builds} == {"reused"}
    first = {b.key: b.digest for b in fixture_build.record.builds}
    assert {b.key: b.digest for b in again.builds} == first
    assert [v.digest for v in again.variants] == [v.digest for v in fixture_build.record.variants]


def fork_of_fixtures(tmp_path: Path) -> Path:
    """A copy of the fixture variants a test may edit; returns its overlay config."""
    return fork_variants(tmp_path, FIXTURE_CONFIG.parent / "variants", FIXTURE_CONFIG.read_text())


def test_editing_the_leaf_rebuilds_only_the_leaf(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    overlay = fork_of_fixtures(tmp_path)
    (tmp_path / "variants" / "fragments" / "leaf.j2").write_text("RUN echo leaf-edited > /etc/leaf-release\n")
    record_path = tmp_path / "leaf.json"
    fixture_cli(fixture_build.registry, "build", "--record", str(record_path), config=overlay)
    record = load(record_path, BuildRecord)
    statuses = {b.key: b.status for b in record.builds}
    assert statuses == {
        "tiny/amd64": "reused", "tiny/arm64": "reused", "broken/amd64": "reused", "broken/arm64": "reused",
        "leaf/amd64": "built", "leaf/arm64": "built", "crashing/amd64": "reused", "crashing/arm64": "reused",
        "initd/amd64": "reused", "initd/arm64": "reused",
    }


def test_an_edit_of_a_context_file_that_keeps_its_size_reaches_the_image(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """Context files get a time that follows from their content: the engine resends only
    files whose size or time changed, so an edit of the same size must change the time."""
    overlay = fork_of_fixtures(tmp_path)
    variants = tmp_path / "variants"
    (variants / "leaf-files").mkdir()
    release = variants / "leaf-files" / "release"
    (variants / "leaf.yaml").write_text((variants / "leaf.yaml").read_text() + "context_files: leaf-files\n")
    (variants / "fragments" / "leaf.j2").write_text("COPY files/release /etc/leaf-release\n")
    repository = fixture_build.record.repository
    seen = []
    for text in ("leaf one\n", "leaf two\n"):
        release.write_text(text)
        record_path = tmp_path / f"{text.split()[1]}.json"
        fixture_cli(fixture_build.registry, "build", "--variant", "leaf", "--platform", "linux/amd64",
                    "--record", str(record_path), config=overlay)
        build = next(b for b in load(record_path, BuildRecord).builds if b.variant == "leaf")
        seen.append(subprocess.run(
            ["docker", "run", "--rm", "--label", "io.headjack.images.test-run=context-edit",
             f"{repository}@{build.digest}", "cat", "/etc/leaf-release"],
            capture_output=True, text=True, check=True,
        ).stdout)
    assert seen == ["leaf one\n", "leaf two\n"]


def test_a_failed_build_skips_its_children_and_indexes_nothing_of_it(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    overlay = fork_of_fixtures(tmp_path)
    variants = tmp_path / "variants"
    (variants / "fragments" / "leaf.j2").write_text("RUN echo about to fail && exit 7\n")
    (variants / "leafchild.yaml").write_text(
        "name: leafchild\nparent: leaf\ntemplate: variant.Dockerfile.j2\n"
    )
    record_path = tmp_path / "failed.json"
    proc = fixture_cli(fixture_build.registry, "build", "--record", str(record_path), config=overlay, check=False)
    assert proc.returncode == 1
    assert "leaf linux/amd64 failed" in proc.stderr and "exit 7" in proc.stderr.replace("code: 7", "exit 7")
    assert "not built because of them: leafchild/amd64, leafchild/arm64" in proc.stderr
    assert "RUN echo about to fail && exit 7\n  from the fragment fragments/leaf.j2" in proc.stderr
    record = load(record_path, BuildRecord)
    by_name = {v.name: v for v in record.variants}
    assert by_name["leaf"].digest is None and by_name["leafchild"].digest is None
    assert by_name["tiny"].digest and by_name["broken"].digest
    assert {b.status for b in record.builds_of("leafchild")} == {"skipped"}


def test_a_fragment_with_an_instruction_the_engine_cannot_run_is_named(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    overlay = fork_of_fixtures(tmp_path)
    (tmp_path / "variants" / "fragments" / "leaf.j2").write_text("RUN echo fine\nONBUILDX RUN echo never\n")
    record_path = tmp_path / "parse.json"
    proc = fixture_cli(fixture_build.registry, "build", "--variant", "leaf", "--record", str(record_path),
                       config=overlay, check=False)
    assert proc.returncode == 1
    for arch in ("amd64", "arm64"):
        assert f"leaf linux/{arch} failed" in proc.stderr
    assert "ONBUILDX RUN echo never\n  from the fragment fragments/leaf.j2" in proc.stderr
    assert "unknown instruction: ONBUILDX" in proc.stderr
    assert "Traceback" not in proc.stderr
    leaf = next(v for v in load(record_path, BuildRecord).variants if v.name == "leaf")
    assert leaf.digest is None


def test_build_refuses_an_unknown_variant_cleanly(test_registry: EmbeddedRegistry) -> None:
    proc = fixture_cli(test_registry, "build", "--variant", "nosuch", check=False)
    assert proc.returncode == 1
    assert "no variant named 'nosuch' (known: crashing, initd, tiny, broken, leaf)" in proc.stderr
    assert "Traceback" not in proc.stderr




def test_merge_joins_per_platform_records_and_refuses_a_missing_platform(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    for arch in ("amd64", "arm64"):
        fixture_cli(fixture_build.registry, "build", "--variant", "tiny", "--platform", f"linux/{arch}",
                    "--record", str(tmp_path / f"record-{arch}.json"))
    merged = tmp_path / "merged.json"
    hjk("--config", str(FIXTURE_CONFIG), "merge", str(tmp_path / "record-amd64.json"),
        str(tmp_path / "record-arm64.json"), "--record", str(merged))
    tiny = load(merged, BuildRecord).variant("tiny")
    assert tiny.digest == fixture_build.record.variant("tiny").digest  # same images, same index
    assert set(oci.inspect(f"{tiny.tag}").platforms) == {"linux/amd64", "linux/arm64"}
    alone = hjk("--config", str(FIXTURE_CONFIG), "merge", str(tmp_path / "record-amd64.json"),
                "--record", str(tmp_path / "alone.json"), check=False)
    assert alone.returncode == 1
    assert "refusing to index tiny: no successful build for linux/arm64" in alone.stderr
    assert not (tmp_path / "alone.json").exists()


def test_a_second_build_on_the_same_state_folder_is_refused(fixture_build: FixtureBuild) -> None:
    from builder.engine import state

    with state.exclusive("build"):
        proc = fixture_cli(fixture_build.registry, "build", "--variant", "tiny", check=False)
    assert proc.returncode == 1
    assert "another run holds" in proc.stderr and "build.mutex" in proc.stderr


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_stop_signal_ends_running_builds_and_indexes_nothing(
    fixture_build: FixtureBuild, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """Ctrl-C (or a CI runner's cancel) stops the server-side build too. The run starts
    with SIGINT ignored, as a background job does (`nohup make test &`): the CLI must
    not depend on how it was started."""
    marker = f"slow-{uuid.uuid4().hex}"  # never in any layer cache: each run really builds
    overlay = fork_of_fixtures(tmp_path)
    variants = tmp_path / "variants"
    (variants / "fragments" / "slow.j2").write_text(f"RUN echo {marker} && sleep 600\n")
    (variants / "slow.yaml").write_text(
        "name: slow\nparent: tiny\ntemplate: variant.Dockerfile.j2\nfragments:\n  root: [fragments/slow.j2]\n"
    )
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hjk-images"
    proc = subprocess.Popen(
        [str(exe), "--config", str(overlay), "build", "--variant", "slow", "--platform", "linux/amd64",
         "--registry", fixture_build.registry.address, "--record", str(tmp_path / "r.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, preexec_fn=_ignore_sigint,
    )
    try:
        log = Path(os.environ[STATE_ENV]) / "logs" / "build" / "slow-amd64.log"
        deadline = time.monotonic() + 600
        while f"echo {marker}" not in (log.read_text() if log.exists() else ""):  # the RUN step started
            assert proc.poll() is None, f"the build ended before its RUN step (exit {proc.returncode})"
            assert time.monotonic() < deadline, "the slow build never reached its RUN step"
            time.sleep(0.5)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=300) == 130
    finally:
        if proc.poll() is None:  # never leave a build holding the state folder's lock
            proc.kill()
            proc.wait()
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "the build's RUN step still runs in the engine"
    tags = catalog(fixture_build.registry.address).get(fixture_build.record.repository.split("/", 1)[1], [])
    assert not any(t.startswith("build-slow") for t in tags)
    # the record says what finished (tiny, reused) and claims nothing else: no index
    stopped = load(tmp_path / "r.json", BuildRecord)
    assert stopped.interrupted and stopped.variants == [] and not stopped.ok
    statuses = {b.key: (b.status, b.error) for b in stopped.builds}
    assert statuses["slow/amd64"] == ("skipped", "interrupted")
    assert statuses["tiny/amd64"][0] == "reused"


def test_an_agent_bump_moves_only_its_layer_and_a_no_cache_rebuild_moves_none(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """A layer per npm tool, every step's times settled and the runtime's mount points present
    in the image: after a bump of the first tool, the second tool's step and a child variant's
    own steps (apt, RUN) run again on the moved parent and write byte-identical layers; a
    --no-cache rebuild of the same inputs writes every layer again, byte for byte the same."""
    # a namespace of its own: the --no-cache build makes tiny again too, whose tag other tests stand on
    overlay = namespaced(tmp_path, "npmlayers", with_lock=False)
    variants = overlay.parent / "variants"
    (variants / "npmlayers.yaml").write_text(
        "name: npmlayers\ndescription: two npm tools, a layer each\nparent: tiny\n"
        "template: variant.Dockerfile.j2\npackages: [curl]\n"
        "tools:\n" + "".join(node_and_npm()) +
        "  - {name: is-number, source: npm, version: 7.0.0}\n"
        "  - {name: is-odd, source: npm, version: 3.0.1}\n"
    )
    (variants / "npmchild.yaml").write_text(
        "name: npmchild\ndescription: a child with packages and a step of its own\nparent: npmlayers\n"
        "template: variant.Dockerfile.j2\npackages: [jq]\nfragments:\n  root: [fragments/npmchild.j2]\n")
    (variants / "fragments" / "npmchild.j2").write_text(
        "RUN touch /.hjk-step && echo child > /etc/npmchild && settle-times /.hjk-step\n")
    one = ["--variant", "npmlayers", "--variant", "npmchild", "--platform", "linux/amd64"]
    paths = [tmp_path / f"{name}.json" for name in ("first", "bumped", "nocache")]
    fixture_cli(fixture_build.registry, "build", *one, "--record", str(paths[0]), config=overlay)
    yaml_file = variants / "npmlayers.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("version: 7.0.0", "version: 6.0.0"))  # the bump
    fixture_cli(fixture_build.registry, "build", *one, "--record", str(paths[1]), config=overlay)
    fixture_cli(fixture_build.registry, "build", *one, "--no-cache", "--record", str(paths[2]), config=overlay)
    repo = load(paths[0], BuildRecord).repository

    def layers(path: Path, variant: str) -> list[str]:
        build = next(b for b in load(path, BuildRecord).builds if b.variant == variant)
        return [digest for digest, _ in oci.layers_of(f"{repo}@{build.digest}")]

    first, bumped, rebuilt = (layers(p, "npmlayers") for p in paths)
    moved = [i for i, (a, b) in enumerate(zip(first, bumped, strict=True)) if a != b]
    assert len(moved) == 1, f"only is-number's layer moves: {moved} of {len(first)}"
    assert rebuilt == bumped  # --no-cache: every step ran again, every layer the same
    child_first, child_bumped, child_rebuilt = (layers(p, "npmchild") for p in paths)
    own = len(first)  # npmchild's own layers follow its parent's
    assert child_first[own:] == child_bumped[own:] and len(child_first) > own  # apt and RUN: the same bytes
    assert child_rebuilt == child_bumped


def node_and_npm() -> list[str]:
    """base's own Node and npm tool entries (so the npm steps run as in base), as YAML lines."""
    import yaml

    base = yaml.safe_load((PROJECT_DIR / "variants" / "base.yaml").read_text())
    return [f"  - {json.dumps(t)}\n" for t in base["tools"] if t["name"] in ("node", "npm")]
