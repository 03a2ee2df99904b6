"""`diff OLD NEW` against a real registry: what a user who has one image pulls for another."""

from __future__ import annotations

import json

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
