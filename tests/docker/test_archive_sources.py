"""Archive sources for real: served from a local HTTP server, verified by sha256 in the build."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.engine.registry import EmbeddedRegistry
from builder.model.records import BuildRecord, PlatformBuild, TestResults, load
from tests.conftest import FIXTURE_CONFIG, RUN_ID, TEST_LABEL, free_port, hjk
from tests.docker.conftest import fixture_cli
from tests.fake_upstream import serve_folder, tar_gz


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Serves hello-1.0.tar.gz on loopback; yields (url, sha256)."""
    folder = tmp_path_factory.mktemp("downloads")
    tarball = tar_gz({"hello-1.0/bin/hello": b"#!/bin/sh\necho hello from the archive\n"})
    (folder / "hello-1.0.tar.gz").write_bytes(tarball)
    with serve_folder(folder, free_port()) as url:
        yield f"{url}/hello-1.0.tar.gz", hashlib.sha256(tarball).hexdigest()


def variant_with_archive(tmp_path: Path, url: str, sha256: str, optional: bool = False) -> Path:
    variants = tmp_path / "variants"
    variants.mkdir()
    (variants / "archived.yaml").write_text(
        "name: archived\nparent: root\ntemplate: variant.Dockerfile.j2\npackages: [curl]\n"
        "tools:\n"
        f"  - {{name: hello, source: archive, version: '1.0', url: '{url}', sha256: '{sha256}', "
        f"links: {{hello: bin/hello}}, optional: {str(optional).lower()}}}\n"
    )
    overlay = tmp_path / "fixture.yaml"
    overlay.write_text(FIXTURE_CONFIG.read_text())
    return overlay


def build_archived(registry: EmbeddedRegistry, overlay: Path, record: Path):  # type: ignore[no-untyped-def]
    return fixture_cli(registry, "build", "--variant", "archived", "--platform", "linux/amd64",
                       "--network", "host", "--record", str(record), config=overlay, check=False)


def test_right_checksum_installs(
    test_registry: EmbeddedRegistry, root_in_registry: str, archive_server: tuple[str, str], tmp_path: Path,
) -> None:
    url, sha = archive_server
    overlay = variant_with_archive(tmp_path, url, sha)
    proc = build_archived(test_registry, overlay, tmp_path / "ok.json")
    assert proc.returncode == 0, proc.stderr
    (build,) = load(tmp_path / "ok.json", BuildRecord).builds
    out = subprocess.run(
        ["docker", "run", "--rm", "--label", f"{TEST_LABEL}={RUN_ID}", f"{build.staging_tag}@{build.digest}", "hello"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "hello from the archive"


def test_wrong_checksum_fails_the_build_naming_the_tool(
    test_registry: EmbeddedRegistry, root_in_registry: str, archive_server: tuple[str, str], tmp_path: Path,
) -> None:
    url, sha = archive_server
    wrong = "0" * 64
    overlay = variant_with_archive(tmp_path, url, wrong)
    proc = build_archived(test_registry, overlay, tmp_path / "bad.json")
    assert proc.returncode == 1
    assert f"tool hello 1.0: sha256 mismatch for {url}: expected {wrong}, got {sha}" in proc.stderr
    assert load(tmp_path / "bad.json", BuildRecord).builds[0].status == "failed"


def test_unreachable_required_source_names_tool_and_url(
    test_registry: EmbeddedRegistry, root_in_registry: str, tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/gone-1.0.tar.gz"
    overlay = variant_with_archive(tmp_path, url, "1" * 64)
    proc = build_archived(test_registry, overlay, tmp_path / "gone.json")
    assert proc.returncode == 1
    assert f"tool hello 1.0: can't fetch {url}" in proc.stderr


def test_a_tool_left_out_is_part_of_the_identity(
    test_registry: EmbeddedRegistry, root_in_registry: str, tmp_path: Path,
) -> None:
    """Built while its download is unreachable, the image leaves the optional tool out and
    says so; once the download can be reached, that image is not reused as the complete one."""
    tarball = tar_gz({"hello-1.0/bin/hello": b"#!/bin/sh\necho hello from the archive\n"})
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "hello-1.0.tar.gz").write_bytes(tarball)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hello-1.0.tar.gz"
    overlay = variant_with_archive(tmp_path, url, hashlib.sha256(tarball).hexdigest(), optional=True)

    left_out = build_archived(test_registry, overlay, tmp_path / "without.json")  # nothing serves the URL yet
    assert left_out.returncode == 0, left_out.stderr
    assert f"archived: optional tool hello left out: {url} can't be reached from here" in left_out.stderr
    (without,) = load(tmp_path / "without.json", BuildRecord).builds
    assert without.status == "built" and without.omitted_tools == ["hello"]
    assert run_in(without, "cat /usr/local/share/headjack/omitted-tools") == "hello"

    with serve_folder(folder, port):
        complete = build_archived(test_registry, overlay, tmp_path / "with.json")
        assert complete.returncode == 0, complete.stderr
        (with_tool,) = load(tmp_path / "with.json", BuildRecord).builds
        assert with_tool.status == "built" and with_tool.omitted_tools == []
        assert with_tool.identity != without.identity
        assert run_in(with_tool, "hello") == "hello from the archive"
        again = build_archived(test_registry, overlay, tmp_path / "again.json")
        (reused,) = load(tmp_path / "again.json", BuildRecord).builds
        assert again.returncode == 0 and reused.status == "reused" and reused.digest == with_tool.digest


def run_in(build: PlatformBuild, command: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--label", f"{TEST_LABEL}={RUN_ID}", f"{build.staging_tag}@{build.digest}",
         "sh", "-c", command], capture_output=True, text=True, check=True,
    ).stdout.strip()


def test_an_archive_per_architecture_and_a_check_needing_a_left_out_tool(
    test_registry: EmbeddedRegistry, root_in_registry: str, tmp_path: Path,
) -> None:
    """A native tool (one archive per architecture, docs left out) is built for both
    platforms, each image holding its own architecture's binary. An optional tool that
    can't be fetched is refused by --require-all-tools before anything builds; without
    it, the tool is left out, and the check that needs it is reported omitted, never passed."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    archives = {}
    for arch in ("amd64", "arm64"):
        tarball = tar_gz({"package/bin/native": f"#!/bin/sh\necho native {arch}\n".encode(),
                          "package/docs/big.txt": b"documentation nobody needs in the image\n"})
        (folder / f"native-{arch}.tgz").write_bytes(tarball)
        archives[arch] = hashlib.sha256(tarball).hexdigest()
    gone = f"http://127.0.0.1:{free_port()}/extra-1.0.tar.gz"
    variants = tmp_path / "variants"
    variants.mkdir()
    with serve_folder(folder, free_port()) as url:
        (variants / "native.yaml").write_text(
            "name: native\nparent: root\ntemplate: variant.Dockerfile.j2\npackages: [curl]\ntools:\n"
            "  - name: native\n    source: archive\n    version: '1.0'\n    exclude: [package/docs]\n"
            "    links: {native: bin/native}\n    archives:\n"
            + "".join(f"      {arch}: {{url: '{url}/native-{arch}.tgz', sha256: '{sha}'}}\n"
                      for arch, sha in archives.items())
            + f"  - {{name: extra, source: archive, version: '1.0', url: '{gone}', sha256: '{'1' * 64}', "
            "links: {extra: bin/extra}, optional: true}\n"
            "checks:\n  commands:\n    - {name: extra answers, run: extra, requires: [extra]}\n"
        )
        overlay = tmp_path / "fixture.yaml"
        overlay.write_text(FIXTURE_CONFIG.read_text())

        refused = fixture_cli(test_registry, "build", "--variant", "native", "--network", "host",
                              "--require-all-tools", "--record", str(tmp_path / "refused.json"),
                              config=overlay, check=False)
        assert refused.returncode == 1
        assert "this build requires every tool: native/extra" in refused.stderr
        assert not (tmp_path / "refused.json").exists()  # refused before anything was built

        record = tmp_path / "native.json"
        built = fixture_cli(test_registry, "build", "--variant", "native", "--network", "host",
                            "--record", str(record), config=overlay, check=False)
    assert built.returncode == 0, built.stderr
    builds = {b.platform: b for b in load(record, BuildRecord).builds}
    assert set(builds) == {"linux/amd64", "linux/arm64"}
    for platform, build in builds.items():
        assert build.omitted_tools == ["extra"]
        out = subprocess.run(
            ["docker", "run", "--rm", "--platform", platform, "--label", f"{TEST_LABEL}={RUN_ID}",
             f"{build.staging_tag}@{build.digest}", "sh", "-c", "native; ls /opt/native"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        assert out[:2] == ["native", platform.split("/")[1]] and "docs" not in out, out

    results = tmp_path / "results.json"
    tested = hjk("--config", str(overlay), "test", "--record", str(record), "--results", str(results), check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    for image in load(results, TestResults).images:
        status = {c.name: (c.status, c.detail) for c in image.checks}
        assert status["extra answers"][0] == "omitted" and "needs extra" in status["extra answers"][1]
        assert status["tool extra"][0] == "omitted"
        assert status["tool native: native --version"][0] == "passed"
