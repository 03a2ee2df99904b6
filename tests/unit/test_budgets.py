"""Size budgets: sizes read as people write them, bad ones named, overruns found."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.config import Budget, parse_size
from builder.model.errors import FactoryError
from builder.model.records import ImageSize, LayerSize, PlatformBuild
from builder.stages.budget import overruns
from tests.conftest import load_variants


@pytest.mark.parametrize(("text", "size"), [
    ("830MB", 830_000_000), ("2.2 GB", 2_200_000_000), ("600MiB", 600 * 2**20), (12345, 12345), ("1kb", 1000),
])
def test_sizes_read_as_written(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_a_budget_that_isnt_a_size_names_its_key(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nparent: root\ntemplate: t\nbudget: {compressed: 1.2 gigs}\n")
    with pytest.raises(FactoryError, match=r"a\.yaml: budget\.compressed: .*'1\.2 gigs' is not a size"):
        load_variants(tmp_path, ["linux/amd64"])


def build(platform: str, compressed: int, uncompressed: int | None) -> PlatformBuild:
    layers = [LayerSize(step="RUN apt-get install big", compressed=compressed, uncompressed=uncompressed)]
    return PlatformBuild(variant="base", platform=platform, status="built", digest="sha256:1",
                         sizes=ImageSize(compressed=compressed, uncompressed=uncompressed, layers=layers))


def test_overruns_name_variant_platform_figure_budget_and_the_heaviest_layers() -> None:
    budget = Budget.model_validate({"compressed": "800MB", "uncompressed": "2GB",
                                    "platforms": {"linux/arm64": {"compressed": "900MB"}}})
    found = overruns([build("linux/amd64", 850_000_000, 1_900_000_000),
                      build("linux/arm64", 850_000_000, 1_900_000_000)], {"base": budget})
    assert [(o.platform, o.measure) for o in found] == [("linux/amd64", "compressed")]
    assert str(found[0]) == ("base linux/amd64 is 850 MB compressed, over its budget of 800 MB "
                             "(heaviest layers: 1900 MB RUN apt-get install big)")


def test_an_unmeasured_figure_is_never_within_budget() -> None:
    found = overruns([build("linux/amd64", 100, None)], {"base": Budget.model_validate({"uncompressed": "1GB"})})
    assert [o.measure for o in found] == ["uncompressed (unmeasured)"]


def test_the_readme_sizes_come_from_the_release_record() -> None:
    from builder.model.records import PublishedVariant, ReleaseRecord
    from builder.present.report import sizes_markdown, with_sizes

    release = ReleaseRecord(created="2026-11-28T00:00:00Z", revision="abcdef123456789", version=None,
                            repository="r", variants=[PublishedVariant(
                                variant="base", repository="r", index_digest="sha256:1", platforms={}, tags=["base"],
                                moved=[], sizes={"linux/amd64": ImageSize(compressed=784_000_000,
                                                                          uncompressed=2_100_000_000)})])
    document = "# T\n<!-- sizes:start -->\nold\n<!-- sizes:end -->\nrest\n"
    written = with_sizes(document, sizes_markdown(release))
    assert "| `base` | linux/amd64 | 784.0 MB | 2.1 GB |" in written
    assert "old" not in written and written.endswith("<!-- sizes:end -->\nrest\n")
    with pytest.raises(ValueError, match="no <!-- sizes:start -->"):
        with_sizes("no markers", "x")
