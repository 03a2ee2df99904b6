"""The agents Feature on images that aren't ours, started by the real Dev Containers CLI from
the registry, both platforms: a Debian 13 made by our root bootstrap, with no Node (the
fixture `tiny`), then the image that already has everything (the Feature must keep it);
and a Debian 12 root, no user and no curl, on amd64.

The Feature is made from a fixture variant's data: two small npm tools stand in for the
agents (the real agents are the e2e tier's), with a setting file and a variable each way.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engine import cosign, oci, state
from builder.engine import devcontainer as cli
from builder.model.records import PublishedFeature
from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, RUN_ID, TEST_LABEL, hjk
from tests.docker.conftest import FixtureBuild, namespaced
from tests.docker.test_build import node_and_npm

AGENTS = {"json5": "2.2.3", "js-yaml": "4.1.0"}
SETTING = ("/etc/json5/settings.json", '{"autoUpdate": false}')


def feature_variant() -> str:
    return (
        "name: agentsfx\ndescription: the agents Feature's stand-in agents\nparent: tiny\n"
        "template: variant.Dockerfile.j2\ntools:\n" + "".join(node_and_npm())
        + f"  - name: json5\n    source: npm\n    version: {AGENTS['json5']}\n"
        f"    settings:\n      files: {{{SETTING[0]}: '{SETTING[1]}'}}\n"
        f"  - name: js-yaml\n    source: npm\n    version: {AGENTS['js-yaml']}\n"
        "    settings:\n      env: {JS_YAML_NO_UPDATE: '1'}\n"
    )


def publish_stand_in_node_feature(registry: str, folder: Path) -> str:
    """The Node Feature ours `installsAfter`, at a mirror of our own: a client fetches the
    metadata of every Feature named there, and ghcr.io is out of reach here."""
    home = folder / "node"
    home.mkdir(parents=True)
    (home / "devcontainer-feature.json").write_text('{"id": "node", "version": "1.0.0", "name": "Node stand-in"}\n')
    (home / "install.sh").write_text("#!/bin/sh\necho the Node Feature stand-in: nothing to do\n")
    cli.publish_feature(cli.cli_path(PROJECT_DIR), home, registry, f"devcontainers-{RUN_ID}/features")
    return f"{registry}/devcontainers-{RUN_ID}/features/node"


def trusting_this_host(image: str, platform: str, registry: str, user: str = "developer") -> str:
    """IMAGE plus this host's locally added CAs in its trust store, as a company image behind a
    TLS-intercepting proxy has them (none added: IMAGE as it is), pushed to REGISTRY: the
    client's feature build resolves its FROM there (a local image of the other architecture
    would be looked for on Docker Hub)."""
    certs = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    tag = f"{registry}/feature-start-{RUN_ID}/{image.rsplit('/', 1)[1].split('@')[0]}:{platform.split('/')[1]}"
    context = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    (context / "extra-ca.crt").write_text("".join(c.read_text() for c in certs))
    (context / "Dockerfile").write_text(
        f"FROM {image}\nUSER root\nCOPY extra-ca.crt /usr/local/share/ca-certificates/hjk-host.crt\n"
        f"RUN update-ca-certificates\nUSER {user}\n" if certs else f"FROM {image}\n")
    subprocess.run(["docker", "buildx", "build", "--push", "--platform", platform, "-t", tag, str(context)],
                   check=True, capture_output=True, text=True)
    return tag


FEATURE_BUILDS_LOCK = Path(tempfile.gettempdir()) / "hjk-tests-feature-builds.lock"


@contextmanager
def one_feature_build_at_a_time() -> Iterator[None]:
    """Without BuildKit the CLI passes a Feature's files to its build as an image with one fixed
    name (dev_container_feature_content_temp), so two Feature builds on one engine, from two
    test sessions at once, can each install the other's Feature. A host-wide lock keeps them apart."""
    with FEATURE_BUILDS_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(image: str, feature: str, folder: Path, label: str, user: str = "developer") -> tuple[str, str]:
    """`devcontainer up` of a project whose devcontainer.json takes IMAGE and FEATURE; returns
    the container id and everything the CLI printed. `--buildkit never`: this host's engine
    (20.10) would otherwise fetch a Dockerfile frontend image from Docker Hub."""
    (folder / ".devcontainer").mkdir(parents=True)
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(
        {"image": image, "remoteUser": user, "features": {feature: {}}}))
    argv = cli.up_argv(cli.cli_path(PROJECT_DIR), folder, [label], None, ["--buildkit", "never"])
    with one_feature_build_at_a_time():
        proc = subprocess.run(cli.with_tmpdir(cli.private_tmp(folder, None), argv),
                              capture_output=True, text=True, check=False, timeout=1200)
    said = proc.stdout + proc.stderr
    outcome = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    assert outcome.get("outcome") == "success", said[-3000:]
    return str(outcome["containerId"]), said


def as_user(folder: Path, label: str, script: str) -> str:
    argv = [cli.cli_path(PROJECT_DIR), "exec", "--workspace-folder", str(folder), "--id-label", label,
            "sh", "-c", script]
    proc = subprocess.run(cli.with_tmpdir(cli.private_tmp(folder, None), argv),
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@dataclass(frozen=True)
class Published:
    feature: PublishedFeature
    overlay: Path
    """The fork's config that made it."""


@pytest.fixture(scope="module")
def published(fixture_build: FixtureBuild, tmp_path_factory: pytest.TempPathFactory) -> Published:
    folder = tmp_path_factory.mktemp("feature")
    registry = fixture_build.registry.address
    node_feature = publish_stand_in_node_feature(registry, folder / "node-feature")
    overlay = namespaced(folder, f"feature-{RUN_ID}")
    (overlay.parent / "variants" / "agentsfx.yaml").write_text(feature_variant())
    overlay.write_text(overlay.read_text() + (
        "feature:\n  id: agents\n  version: 1.0.0\n  variant: agentsfx\n  tools: [json5, js-yaml]\n"
        f"  installs_after: [{node_feature}]\n"))
    proc = hjk("--config", str(overlay), "feature", "--out", str(folder / "out"), "--publish",
               "--registry", registry, "--json")
    return Published(PublishedFeature.model_validate_json(proc.stdout), overlay)


def test_publish_tags_reads_back_and_signs_it(published: Published) -> None:
    shipped = published.feature
    assert shipped.pushed and shipped.signed
    assert shipped.tags == ["1", "1.0", "1.0.0", "latest"]
    for tag in shipped.tags:
        assert oci.lookup(f"{shipped.repository}:{tag}") == shipped.digest
    files = oci.artifact_files(f"{shipped.repository}@{shipped.digest}")
    metadata = json.loads(files["devcontainer-feature.json"])
    assert {k: metadata["options"][f"{k}Version"]["default"] for k in AGENTS} == AGENTS
    assert metadata["containerEnv"] == {"JS_YAML_NO_UPDATE": "1"}
    _, public = cosign.local_key_pair(state.subdir("keys"))  # what a local publish signs with
    assert "verified" in cosign.verify(f"{shipped.repository}@{shipped.digest}", public).lower()


def test_a_published_version_never_changes(published: Published, fixture_build: FixtureBuild,
                                           tmp_path: Path) -> None:
    variant = published.overlay.parent / "variants" / "agentsfx.yaml"
    before = variant.read_text()
    variant.write_text(before.replace('{"autoUpdate": false}', '{"autoUpdate": true}'))
    try:
        proc = hjk("--config", str(published.overlay), "feature", "--out", str(tmp_path), "--publish",
                   "--registry", fixture_build.registry.address, check=False)
    finally:
        variant.write_text(before)
    assert proc.returncode == 1
    assert f"{published.feature.repository}:1.0.0 is published with other content (install.sh differ)" in proc.stderr
    assert "raise feature.version in factory.yaml" in proc.stderr
    assert oci.lookup(f"{published.feature.repository}:1") == published.feature.digest


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_the_feature_installs_node_and_the_agents_on_debian_then_keeps_them(
    published: Published, fixture_build: FixtureBuild, tmp_path: Path, platform: str,
) -> None:
    tiny = next(b for b in fixture_build.record.builds_of("tiny") if b.platform == platform)
    start = trusting_this_host(f"{fixture_build.record.repository}@{tiny.digest}", platform,
                               fixture_build.registry.address)
    label = f"{TEST_LABEL}=feature-{uuid.uuid4().hex[:8]}"
    reference = f"{published.feature.repository}:1"
    workspaces = [tmp_path / "first", tmp_path / "again"]
    before = images_named_for(workspaces)
    try:
        container, said = up(start, reference, tmp_path / "first", label)
        assert "hjk: tool node" in said and "installed from" in said
        for name, version in AGENTS.items():
            assert f"agents feature: {name} installed: {name}@{version}" in said
        answers = as_user(tmp_path / "first", label, "id -un; node --version; json5 --version; js-yaml --version; "
                          f"cat {SETTING[0]}; echo \"JS_YAML_NO_UPDATE=$JS_YAML_NO_UPDATE\"")
        lines = answers.split()
        assert lines[0] == "developer" and lines[1].startswith("v22.")
        assert lines[2:4] == [AGENTS["json5"], AGENTS["js-yaml"]]
        assert SETTING[1] in answers and "JS_YAML_NO_UPDATE=1" in answers
        # the image that has everything: the Feature keeps what is there
        image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", container],
                               capture_output=True, text=True, check=True).stdout.strip()
        featured = f"{start.rsplit(':', 1)[0]}-featured:{platform.split('/')[1]}"  # from the registry, as above
        for argv in (["tag", image, featured], ["push", featured]):
            subprocess.run(["docker", *argv], capture_output=True, text=True, check=True)
        _, again = up(featured, reference, tmp_path / "again", f"{label}-again")
        assert "is on PATH: kept" in again
        for name, version in AGENTS.items():
            assert f"agents feature: {name} {version} is installed: kept" in again, again[-6000:]
            assert f"agents feature: {name} installed" not in again
    finally:
        cli.remove(f"{label}-again")
        cli.remove(label)
        subprocess.run(["docker", "image", "rm", "-f", start], capture_output=True, check=False)
    left = images_named_for(workspaces) - before
    assert not left, f"the CLI's images outlived their containers: {left}"


def images_named_for(workspaces: list[Path]) -> set[str]:
    """The engine's images named as the CLI names those it builds for WORKSPACES (vsc-<folder name>-...)."""
    names = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    return {name for name in names if name.startswith(tuple(f"vsc-{w.name}-" for w in workspaces))}


@pytest.mark.parametrize(("setup", "expected"), [
    ("printf 'ID=alpine\\n' > /etc/os-release",
     "agents feature: ERROR: unsupported distribution 'alpine': only Debian and Ubuntu are supported"),
    ("printf '#!/bin/sh\\necho riscv64\\n' > /usr/local/bin/dpkg && chmod +x /usr/local/bin/dpkg",
     "agents feature: ERROR: unsupported architecture 'riscv64': only amd64 and arm64 are supported"),
])
def test_an_unsupported_image_fails_in_one_clear_line(
    published: Published, fixture_build: FixtureBuild, tmp_path: Path, setup: str, expected: str,
) -> None:
    files = oci.artifact_files(f"{published.feature.repository}@{published.feature.digest}")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    tiny = next(b for b in fixture_build.record.builds_of("tiny") if b.platform == "linux/amd64")
    proc = subprocess.run(
        ["docker", "run", "--rm", "-u", "0", "--label", f"{TEST_LABEL}={RUN_ID}", "-v", f"{tmp_path}:/feature:ro",
         f"{fixture_build.record.repository}@{tiny.digest}", "sh", "-c", f"{setup} && sh /feature/install.sh"],
        capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == expected


def test_the_dockerfile_lines_install_the_same_in_a_plain_build(
    published: Published, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """`feature --dockerfile`: a team that builds with plain Docker gets the same install."""
    tiny = next(b for b in fixture_build.record.builds_of("tiny") if b.platform == "linux/amd64")
    start = trusting_this_host(f"{fixture_build.record.repository}@{tiny.digest}", "linux/amd64",
                               fixture_build.registry.address)
    fragment = hjk("--config", str(published.overlay), "feature", "--out", str(tmp_path / "agents-feature"),
                   "--dockerfile").stdout
    (tmp_path / "Dockerfile").write_text(f"FROM {start}\n{fragment.replace(str(tmp_path) + '/', '')}"
                                         "USER developer\n")
    tag = f"hjk-feature-plain:{RUN_ID}"
    try:
        subprocess.run(["docker", "buildx", "build", "--load", "-t", tag, str(tmp_path)],
                       check=True, capture_output=True, text=True)
        answers = subprocess.run(
            ["docker", "run", "--rm", "--label", f"{TEST_LABEL}={RUN_ID}", tag, "sh", "-c",
             f"id -un; json5 --version; js-yaml --version; cat {SETTING[0]}; echo $JS_YAML_NO_UPDATE"],
            capture_output=True, text=True, check=True).stdout.split("\n")
        assert answers[:5] == ["developer", AGENTS["json5"], AGENTS["js-yaml"], SETTING[1], "1"]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_on_a_second_debian_suite_the_feature_installs_the_same(
    published: Published, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """Debian 12, made by our root bootstrap (no user, no Node), amd64: an Ubuntu root can't be
    made here (ports.ubuntu.com, Ubuntu's arm64 archive, is out of reach; so is any image pull)."""
    overlay = tmp_path / "bookworm.yaml"
    overlay.write_text(f"namespace: bookworm-{RUN_ID}\nimage: images\nvariants_dir: {FIXTURE_CONFIG.parent}/variants\n"
                       "root:\n  bootstrap:\n    suite: bookworm\n")
    root = hjk("--config", str(overlay), "root", "bootstrap", "--registry", fixture_build.registry.address,
               "--platform", "linux/amd64").stdout.strip().splitlines()[-1]
    start = trusting_this_host(root, "linux/amd64", fixture_build.registry.address, user="root")
    label = f"{TEST_LABEL}=feature-{uuid.uuid4().hex[:8]}"
    try:
        _, said = up(start, f"{published.feature.repository}:1", tmp_path / "ws", label, user="root")
        assert "agents feature: installing curl" in said and "hjk: tool node" in said
        answers = as_user(tmp_path / "ws", label, ". /etc/os-release; echo $VERSION_ID; node --version; "
                          "json5 --version; js-yaml --version")
        assert answers.split() == ["12", answers.split()[1], AGENTS["json5"], AGENTS["js-yaml"]]
        assert answers.split()[1].startswith("v22.")
    finally:
        cli.remove(label)
