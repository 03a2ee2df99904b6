"""Dockerfile mode: every FROM that names a factory image is pinned; the final stage's is the parent."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.errors import FactoryError
from builder.stages.render import dockerfile_stages


def stages_of(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    found = dockerfile_stages(path, "headjack")
    return found.parent, found.uses


def test_the_final_stage_names_the_parent_and_earlier_stages_are_used(tmp_path: Path) -> None:
    text = ("FROM ghcr.io/gilmanlab/headjack:systemd AS tools\n"
            "FROM golang:1.23 AS go\n"
            "FROM tools AS again\n"
            "FROM scratch AS empty\n"
            "FROM --platform=linux/amd64 ghcr.io/gilmanlab/headjack:base@sha256:" + "a" * 64 + " as builder\n"
            "FROM ghcr.io/gilmanlab/headjack:base\n")
    assert stages_of(tmp_path, text) == ("base", ["systemd"])


def test_the_same_variant_in_every_stage_uses_nothing_else(tmp_path: Path) -> None:
    text = "FROM ghcr.io/gilmanlab/headjack:base AS builder\nRUN true\nFROM ghcr.io/gilmanlab/headjack:base\n"
    assert stages_of(tmp_path, text) == ("base", [])


@pytest.mark.parametrize(("text", "message"), [
    ("FROM debian:trixie\n", "the final FROM debian:trixie is not one of this factory's images"),
    ("FROM ghcr.io/x/headjack:base AS b\nFROM b\n", "the final FROM b is not one of"),
    ("FROM ghcr.io/x/headjack@sha256:" + "a" * 64 + "\n", "name the variant it builds on"),
    ("# nothing\n", "no FROM line"),
])
def test_a_dockerfile_we_cant_pin_is_refused_naming_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FactoryError, match=message):
        stages_of(tmp_path, text)
