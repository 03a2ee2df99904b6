from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.engine import commands as tools
from builder.model.config import RootBootstrap
from builder.model.errors import FactoryError
from builder.stages import root as rootfs


def test_cache_key_changes_with_every_input() -> None:
    base = RootBootstrap()
    keys = {
        rootfs.cache_key(base, "amd64"),
        rootfs.cache_key(base, "arm64"),
        rootfs.cache_key(RootBootstrap(suite="bookworm"), "amd64"),
        rootfs.cache_key(RootBootstrap(mirror="http://mirror.example/debian"), "amd64"),
        rootfs.cache_key(RootBootstrap(packages=["vim"]), "amd64"),
    }
    assert len(keys) == 5
    # package order does not matter
    assert rootfs.cache_key(RootBootstrap(packages=["a", "b"]), "amd64") == rootfs.cache_key(
        RootBootstrap(packages=["b", "a"]), "amd64"
    )


def test_interrupted_bootstrap_leaves_no_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def interrupted(argv: list[str], **_: Any) -> tools.Result:
        partial = Path(argv[-2])
        partial.write_bytes(b"half a tarball")
        seen.append(partial)
        raise KeyboardInterrupt

    monkeypatch.setattr(tools, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rootfs.make_rootfs(RootBootstrap(), "amd64", tmp_path, tmp_path / "log")
    assert seen, "mmdebstrap was not called"
    assert list(tmp_path.glob("*.tar")) == []


def test_failed_bootstrap_names_the_platform_and_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(argv: list[str], **kwargs: Any) -> tools.Result:
        kwargs["log"].write("E: no such suite\n")
        return tools.Result(list(argv), 1, "", "")

    monkeypatch.setattr(tools, "run", failing)
    with pytest.raises(FactoryError, match=r"(?s)mmdebstrap failed for trixie/arm64 .*no such suite"):
        rootfs.make_rootfs(RootBootstrap(), "arm64", tmp_path, tmp_path / "log")
    assert list(tmp_path.glob("*.tar")) == []
