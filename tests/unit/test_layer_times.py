"""Layer times: a BuildKit that can rewrite them (>= 0.13) is asked to, with one fixed
SOURCE_DATE_EPOCH; an older one builds as before, and the build record says which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.engine import buildx
from builder.stages.build import layer_times


class _Recorder:
    """Stands in for python-on-whales' client: keeps the build call's arguments, writes the metadata."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.buildx = self

    def build(self, context: Path, **kwargs: Any) -> list[str]:
        self.calls.append(kwargs)
        Path(kwargs["metadata_file"]).write_text('{"containerimage.digest": "sha256:' + "a" * 64 + '"}')
        return ["#1 done\n"]


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> dict[str, Any]:
    recorder = _Recorder()
    monkeypatch.setattr(buildx, "docker_client", lambda: recorder)
    buildx.buildx_build(context=tmp_path, dockerfile=tmp_path / "Dockerfile", platform="linux/amd64",
                        tags=["r/x:y"], log_path=tmp_path / "b.log", build_args={"A": "1"}, **options)
    (call,) = recorder.calls
    return call


def test_a_builder_that_can_rewrites_the_layer_times_to_one_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = _build(tmp_path, monkeypatch, rewrite_timestamp=True)
    assert call["output"] == {"type": "image", "push": "true", "rewrite-timestamp": "true"}
    assert call["push"] is False and call["load"] is False  # the exporter is spelled out instead
    assert call["build_args"] == {"A": "1", "SOURCE_DATE_EPOCH": "0"}
    loaded = _build(tmp_path, monkeypatch, rewrite_timestamp=True, load=True)
    assert loaded["output"] == {"type": "docker", "rewrite-timestamp": "true"}


def test_an_older_builder_pushes_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    call = _build(tmp_path, monkeypatch)
    assert call["output"] == {} and call["push"] is True
    assert call["build_args"] == {"A": "1"}


@pytest.mark.parametrize(("said", "version", "rewrites"), [
    ("v0.8+unknown", (0, 8), False),  # engine 20.10's own
    ("v0.12.5", (0, 12), False),
    ("v0.13.0", (0, 13), True),
    ("v0.23.2", (0, 23), True),
    ("1.0.0", (1, 0), True),
    ("", None, False),
    (None, None, False),
])
def test_the_builders_version_decides(said: str | None, version: tuple[int, int] | None, rewrites: bool) -> None:
    assert buildx.parse_buildkit_version(said) == version
    assert buildx.rewrites_timestamps(version) is rewrites
    assert layer_times(version).startswith("rewritten" if rewrites else "as each step left them")
