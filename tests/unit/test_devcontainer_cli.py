"""How the Dev Containers CLI is run: a private TMPDIR per workspace, and every image it
built taken away with its container."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from builder.engine import devcontainer as cli


def test_the_uid_remap_and_the_features_image_both_go_the_remap_first() -> None:
    started_from = ["vsc-first-1a2b-features-uid", "vsc-again-3c4d-features", "localhost:5000/x/images@sha256:ab"]
    assert cli.made_images(started_from) == [
        "vsc-first-1a2b-features-uid", "vsc-first-1a2b-features", "vsc-again-3c4d-features"]


def test_an_image_two_containers_ran_is_named_once() -> None:
    assert cli.made_images(["vsc-ws-9f-uid", "vsc-ws-9f-uid"]) == ["vsc-ws-9f-uid", "vsc-ws-9f"]


def test_each_workspace_gets_its_own_tmpdir_which_survives_runuser(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first, second = cli.private_tmp(tmp_path / "a", None), cli.private_tmp(tmp_path / "b", None)
    assert first != second
    assert stat.S_IMODE(first.stat().st_mode) == 0o700 and first.stat().st_uid == os.geteuid()
    assert cli.with_tmpdir(first, ["devcontainer", "up"]) == ["env", f"TMPDIR={first}", "devcontainer", "up"]
