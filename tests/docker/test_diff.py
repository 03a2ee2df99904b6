"""`diff OLD NEW` against a real registry: what a user who has one image pulls for another."""

from __future__ import annotations

import json
import os

from builder.engine import oci
from tests.conftest import hjk
from tests.docker.conftest import FixtureBuild


def test_diff_counts_the_layers_shared_and_the_bytes_to_pull(fixture_build: FixtureBuild) -> None:
    """leaf is tiny plus its own layers: a user with tiny pulls exactly those; nothing for
    the same image again."""
    repo = fixture_build.record.repository
    tiny, leaf = (f"{repo}@{fixture_build.record.variant(v).digest}" for v in ("tiny", "leaf"))
    diffs = json.loads(hjk("diff", tiny, leaf, "--json").stdout)
    assert {d["platform"] for d in diffs} == {"linux/amd64", "linux/arm64"}
    for d in diffs:
        old_layers = oci.layers_of(d["old"])
        new_layers = oci.layers_of(d["new"])
        assert new_layers[:len(old_layers)] == old_layers  # leaf starts with tiny's layers
        have = {digest for digest, _ in old_layers}
        fresh = [(digest, size) for digest, size in new_layers if digest not in have]
        assert fresh and len(fresh) <= len(new_layers) - len(old_layers)
        assert (d["shared_layers"], d["new_layers"]) == (len(new_layers) - len(fresh), len(fresh))
        assert d["bytes_to_pull"] == sum(size for _, size in fresh) > 0
        assert d["packages"] == []  # leaf installs no package of its own
    same = json.loads(hjk("diff", leaf, leaf, "--json", "--no-packages").stdout)
    assert all(d["bytes_to_pull"] == 0 and d["new_layers"] == 0 for d in same)
    table = hjk("diff", tiny, leaf, "--no-packages").stdout
    assert "what an update costs to pull" in table


def test_diff_compares_across_repositories_and_writes_markdown(fixture_build: FixtureBuild, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As the refresh pull request uses it: the published image against a build pushed
    elsewhere (here another repository of the registry); layers count by digest alone."""
    repo = fixture_build.record.repository
    tiny, leaf = (f"{repo}@{fixture_build.record.variant(v).digest}" for v in ("tiny", "leaf"))
    elsewhere = f"{fixture_build.registry.address}/refresh-pr/images:leaf"
    oci.write_tag(elsewhere, leaf)
    same_repo = json.loads(hjk("diff", tiny, leaf, "--json", "--no-packages").stdout)
    markdown = tmp_path / "diff.md"
    across = json.loads(hjk("diff", tiny, elsewhere, "--json", "--no-packages", "--markdown", str(markdown)).stdout)
    assert [(d["platform"], d["shared_layers"], d["new_layers"], d["bytes_to_pull"]) for d in across] == [
        (d["platform"], d["shared_layers"], d["new_layers"], d["bytes_to_pull"]) for d in same_repo]
    text = markdown.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| leaf |")]
    assert len(rows) == 2 and {r.split(" | ")[1] for r in rows} == {"linux/amd64", "linux/arm64"}
    assert all(r.split(" | ")[3] == str(d["new_layers"]) for r, d in zip(sorted(rows), across, strict=True))


def test_the_refresh_workflows_pull_cost_step_runs_as_written(fixture_build: FixtureBuild, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The refresh workflow's own step, its shell run as written, with the fixture registry
    standing in for ghcr.io: each refreshed variant against the published tag of its name.
    Published here: tiny as built (nothing to pull) and, as `leaf`, tiny too (a user pulls
    leaf's own layers); a variant never published is said so, not fatal."""
    import subprocess
    import uuid

    import yaml

    from tests.conftest import PROJECT_DIR

    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "refresh.yml").read_text())
    steps = workflow["jobs"]["refresh"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "What the refresh costs users to pull"]
    built = fixture_build.record
    address = fixture_build.registry.address
    published = f"{address}/published-{uuid.uuid4().hex[:8]}/images"
    tiny = f"{built.repository}@{built.variant('tiny').digest}"
    for tag in ("tiny", "leaf"):
        oci.write_tag(f"{published}:{tag}", tiny)
    record = json.loads(fixture_build.record_path.read_text())
    record["repository"] = published  # the step names the published tags after it
    record["variants"] = [v for v in record["variants"] if v["name"] in ("tiny", "leaf")]
    record["variants"].append({**record["variants"][0], "name": "ghost"})
    (tmp_path / "refreshed.json").write_text(json.dumps(record))
    (tmp_path / ".venv").symlink_to(PROJECT_DIR / ".venv")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PUBLISHED_REGISTRY": address}, check=False)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "pull-costs.md").read_text()
    rows = {(r[0].strip("| "), r[1]): r for r in (line.split(" | ") for line in text.splitlines())
            if r[0].startswith("| ") and r[1].startswith("linux/")}
    assert set(rows) == {(v, p) for v in ("tiny", "leaf") for p in ("linux/amd64", "linux/arm64")}
    leaf_index = f"{built.repository}@{built.variant('leaf').digest}"
    for platform in ("linux/amd64", "linux/arm64"):
        assert rows[("tiny", platform)][3:5] == ["0", "0 B"]  # the same image: nothing to pull
        leaf = f"{built.repository}@{oci.inspect(leaf_index).platforms[platform]}"
        have = {d for d, _ in oci.layers_of(f"{built.repository}@{oci.inspect(tiny).platforms[platform]}")}
        assert rows[("leaf", platform)][3] == str(sum(d not in have for d, _ in oci.layers_of(leaf))) != "0"
    assert "ghost: not compared" in text
