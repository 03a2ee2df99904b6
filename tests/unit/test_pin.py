"""`pin` rewrites only the references of FROM lines naming the factory's images; `--check`
names each line that is unpinned or behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.model.errors import FactoryError
from builder.stages import pin

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
TEAM = """# syntax comment stays
FROM ghcr.io/acme/headjack:base AS tools   # a stage on base
RUN echo tools
FROM python:3.12-slim AS other
FROM --platform=$BUILDPLATFORM ghcr.io/acme/headjack:systemd@{old}
USER developer
"""


def test_pinning_changes_only_the_factory_references() -> None:
    path = Path("Dockerfile.dev")
    text = TEAM.format(old=OLD)
    pinned = pin.pinned_text(text, path, "headjack", {"base": NEW, "systemd": NEW})
    assert pinned == TEAM.format(old=NEW).replace(
        "ghcr.io/acme/headjack:base AS", f"ghcr.io/acme/headjack:base@{NEW} AS")
    assert pin.pinned_text(pinned, path, "headjack", {"base": NEW, "systemd": NEW}) == pinned  # idempotent


def test_check_names_the_unpinned_and_the_behind_lines() -> None:
    path = Path("Dockerfile.dev")
    lines = pin.pin_lines({path: TEAM.format(old=OLD)}, "headjack", {"base": NEW, "systemd": NEW})
    assert [(line.line, line.variant, line.current) for line in lines] == [(2, "base", False), (5, "systemd", False)]
    assert lines[0].describe() == f"Dockerfile.dev:2: FROM ...:base is unpinned (the registry's :base is {NEW})"
    assert lines[1].describe() == (f"Dockerfile.dev:5: FROM ...:systemd is pinned to {OLD}, "
                                   f"the registry's :systemd is {NEW}")
    current = pin.pin_lines({path: TEAM.format(old=NEW)}, "headjack", {"base": NEW, "systemd": NEW})
    assert [line.current for line in current] == [False, True]


def test_a_malformed_pin_is_refused_naming_the_file() -> None:
    fault = re.escape("Dockerfile.dev: FROM ghcr.io/acme/headjack:base@sha256:123: a pin")
    with pytest.raises(FactoryError, match=fault):
        pin.pin_lines({Path("Dockerfile.dev"): "FROM ghcr.io/acme/headjack:base@sha256:123\n"}, "headjack", {})
