"""What images weigh: read from the image itself, layer by layer, for both platforms."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild


def test_size_reports_every_layer_with_the_step_that_made_it(fixture_build: FixtureBuild) -> None:
    proc = hjk("--config", str(FIXTURE_CONFIG), "size", "--record", str(fixture_build.record_path),
               "--variant", "tiny", "--json")
    reports = {r["platform"]: r for r in json.loads(proc.stdout)}
    assert set(reports) == {"linux/amd64", "linux/arm64"}
    for platform, report in reports.items():
        layers = report["layers"]
        assert 0 < _config_size(report) < 100_000  # the total is the layers plus the small config blob
        assert report["uncompressed"] >= sum(layer["uncompressed"] for layer in layers) > report["compressed"] / 2
        # the root's file system is the first layer; tiny's fragment made a layer of its own
        assert layers[0]["uncompressed"] > 50_000_000, platform
        assert any("echo tiny > /etc/tiny-release" in layer["step"] for layer in layers), layers
    table = hjk("--config", str(FIXTURE_CONFIG), "size", "--record", str(fixture_build.record_path),
                "--variant", "tiny")
    assert "image sizes" in table.stdout and "echo tiny" in table.stdout


def _config_size(report: dict[str, object]) -> int:
    """The config blob is counted in the compressed total but is no layer."""
    layers = report["layers"]
    assert isinstance(layers, list)
    total = report["compressed"]
    assert isinstance(total, int)
    return total - sum(int(layer["compressed"]) for layer in layers)


def test_explain_names_what_weighs_most_inside_the_image(fixture_build: FixtureBuild) -> None:
    proc = hjk("--config", str(FIXTURE_CONFIG), "size", "--record", str(fixture_build.record_path),
               "--variant", "tiny", "--platform", "linux/arm64", "--explain", "--threshold", "1", "--json")
    (report,) = json.loads(proc.stdout)
    inside = report["inside"]
    packages = dict(inside["debian"])
    assert "libc6" in packages and packages["libc6"] > 1_000_000
    sizes = [size for _, size in inside["debian"]]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    files = dict(inside["files"])
    assert files and all(size > 1_000_000 for size in files.values())
    assert any("aarch64-linux-gnu" in path for path in files)  # read from the arm64 image itself
    table = hjk("--config", str(FIXTURE_CONFIG), "size", "--record", str(fixture_build.record_path),
                "--variant", "tiny", "--platform", "linux/amd64", "--explain")
    assert "what weighs most in tiny linux/amd64" in table.stdout and "libc6" in table.stdout


def test_plot_draws_every_built_image_from_the_registry(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    svg = tmp_path / "sizes.svg"
    proc = hjk("--config", str(FIXTURE_CONFIG), "size", "--record", str(fixture_build.record_path),
               "--variant", "tiny", "--variant", "leaf", "--plot", str(svg))
    assert f"plot: {svg}" in proc.stderr
    text = svg.read_text()
    for label in ("tiny", "leaf", "amd64", "arm64", "root", "the variant's own layers"):
        assert label in text, label
