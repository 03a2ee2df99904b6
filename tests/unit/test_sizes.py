"""Layer steps as a person reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.engine.sizes import _tidy
from builder.model.records import ImageSize, LayerSize, PlatformBuild
from builder.present.plot import size_plot


@pytest.mark.parametrize(("created_by", "step"), [
    ("RUN |3 A=1 B=x y C=3 /bin/bash -o pipefail -c apt-get update # buildkit", "RUN apt-get update"),
    ("RUN |2 BASE_IMAGE=r@sha256:1 BASE_DIGEST=sha256:1 /bin/bash -o pipefail -c npm i -g x # buildkit",
     "RUN npm i -g x"),
    ("ADD rootfs.tar / # buildkit", "ADD rootfs.tar /"),
    ("/bin/sh -c #(nop) COPY file:abc in / ", "COPY file:abc in /"),
    ("RUN |1 A=1 echo no shell # buildkit", "RUN echo no shell"),
    ("", ""),
])
def test_steps_lose_their_wrappers(created_by: str, step: str) -> None:
    assert _tidy(created_by) == step


def plotted_builds() -> tuple[list[PlatformBuild], dict[str, int]]:
    root = LayerSize(step="ADD rootfs.tar /", compressed=40_000_000)
    base = PlatformBuild(variant="base", platform="linux/amd64", status="built", sizes=ImageSize(
        compressed=790_000_000, layers=[root, LayerSize(step="RUN apt-get update && apt-get install -y git",
                                                        compressed=350_000_000),
                                        LayerSize(step="ENV DISABLE_AUTOUPDATER=1", compressed=0),
                                        LayerSize(step="RUN npm install --global claude", compressed=400_000_000)]))
    assert base.sizes is not None
    dind = PlatformBuild(variant="dind", platform="linux/amd64", status="built", sizes=ImageSize(
        compressed=930_000_000, layers=[*base.sizes.layers, LayerSize(step="RUN apt-get install -y docker.io",
                                                                      compressed=140_000_000)]))
    return [base, dind], {"base/amd64": 1, "dind/amd64": 4}


def test_the_plot_stacks_root_inherited_and_own_layers_as_svg_text(tmp_path: Path) -> None:
    builds, inherited = plotted_builds()
    svg = tmp_path / "sizes.svg"
    size_plot(builds, inherited, svg)
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    for label in ("base", "dind", "root", "from the parent variant", "RUN npm install --global claude",
                  "RUN apt-get install -y docker.io", "790 MB", "930 MB"):
        assert label in text, label
    assert "ENV DISABLE_AUTOUPDATER" not in text  # too small to name


def test_the_plot_is_a_png_by_its_suffix_and_refuses_others(tmp_path: Path) -> None:
    builds, inherited = plotted_builds()
    png = tmp_path / "sizes.png"
    size_plot(builds, inherited, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"sizes.pdf: the plot is written as .svg or .png"):
        size_plot(builds, inherited, tmp_path / "sizes.pdf")
