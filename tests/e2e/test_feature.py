"""The agents Feature the release published, with the real agents, under the real Dev
Containers CLI: what the registry holds is what `hjk-images feature` makes, signed; on the
released base (both platforms) it keeps every agent as it is; on our Debian root without
Node it installs Node and the three agents at their pins, settings included.

The released Feature names the common Node Feature on ghcr.io in `installsAfter`, and a
client fetches it: out of reach here. So the containers take a copy that differs in that
one line (the mirror an offline organisation would name), published the same way.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from builder.engine import cosign, oci, state
from builder.engine import devcontainer as cli
from builder.model.records import PublishedFeature
from tests.conftest import PROJECT_DIR, RUN_ID, TEST_LABEL, hjk
from tests.docker.test_feature import as_user, publish_stand_in_node_feature, trusting_this_host, up
from tests.e2e.conftest import Release

BASE = {t["name"]: t for t in yaml.safe_load((PROJECT_DIR / "variants" / "base.yaml").read_text())["tools"]}
AGENTS = {"claude": "claude --version", "gemini": "gemini --version", "codex": "codex --version"}


@pytest.fixture(scope="module")
def startable(released: Release, tmp_path_factory: pytest.TempPathFactory) -> PublishedFeature:
    """The released Feature with installsAfter naming a stand-in on the e2e registry."""
    folder = tmp_path_factory.mktemp("feature")
    registry = released.registry.address
    node_feature = publish_stand_in_node_feature(registry, folder / "node-feature")
    overlay = folder / "overlay.yaml"
    overlay.write_text(f"namespace: e2e-feature-{RUN_ID}\nfeature:\n  installs_after: [{node_feature}]\n")
    proc = hjk("--config", str(overlay), "feature", "--out", str(folder / "out"), "--publish",
               "--registry", registry, "--json")
    return PublishedFeature.model_validate_json(proc.stdout)


def test_the_release_published_the_feature_it_makes_and_signed_it(released: Release, tmp_path: Path) -> None:
    shipped = released.release.feature
    assert shipped is not None and shipped.signed
    assert shipped.repository == f"{released.registry.address}/gilmanlab/features/agents"
    hjk("feature", "--out", str(tmp_path))
    held = oci.artifact_files(f"{shipped.repository}@{shipped.digest}")
    assert held == {p.name: p.read_bytes() for p in (tmp_path / "agents").iterdir()}
    metadata = json.loads(held["devcontainer-feature.json"])
    assert {a: metadata["options"][f"{a}Version"]["default"] for a in AGENTS} == \
        {a: BASE[a]["version"] for a in AGENTS}
    assert metadata["installsAfter"] == ["ghcr.io/devcontainers/features/node"]
    _, public = cosign.local_key_pair(state.subdir("keys"))
    assert "verified" in cosign.verify(f"{shipped.repository}@{shipped.digest}", public).lower()


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_on_the_released_base_the_feature_keeps_every_agent(
    released: Release, startable: PublishedFeature, tmp_path: Path, platform: str,
) -> None:
    build = next(b for b in released.build.builds_of("base") if b.platform == platform)
    label = f"{TEST_LABEL}=e2e-feature-{uuid.uuid4().hex[:8]}"
    try:
        _, said = up(f"{released.build.repository}@{build.digest}", f"{startable.repository}:1", tmp_path, label)
        assert "agents feature: Node v22." in said and "is on PATH: kept" in said
        for agent in AGENTS:
            assert f"agents feature: {agent} {BASE[agent]['version']} is installed: kept" in said
            assert f"agents feature: {agent} installed" not in said
    finally:
        cli.remove(label)


def test_on_our_debian_root_the_feature_installs_node_and_the_real_agents(
    released: Release, startable: PublishedFeature, tmp_path: Path,
) -> None:
    """amd64 only: three agents' npm installs under arm64 emulation take minutes, and the
    docker tier proves the arm64 install with small stand-ins."""
    root = released.build.root
    image = f"{oci.repository_of(root.reference)}@{root.platforms['linux/amd64']}"
    start = trusting_this_host(image, "linux/amd64", released.registry.address, user="root")
    label = f"{TEST_LABEL}=e2e-feature-{uuid.uuid4().hex[:8]}"
    try:
        _, said = up(start, f"{startable.repository}:1", tmp_path, label, user="root")
        assert "hjk: tool node" in said
        answers = as_user(tmp_path, label, "; ".join(f"{command} 2>&1 | head -1" for command in AGENTS.values())
                          + "; cat /etc/gemini-cli/settings.json /etc/codex/config.toml; "
                          "echo DISABLE_AUTOUPDATER=$DISABLE_AUTOUPDATER")
        for agent in AGENTS:
            assert BASE[agent]["version"] in answers, answers
        assert '"enableAutoUpdate": false' in answers and "check_for_update_on_startup = false" in answers
        assert "DISABLE_AUTOUPDATER=1" in answers
    finally:
        cli.remove(label)
