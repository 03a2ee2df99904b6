from __future__ import annotations

import socket
from pathlib import Path

import pytest

from builder.engine.registry import EmbeddedRegistry
from builder.model.errors import FactoryError


def test_port_taken_by_another_program_is_named(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        reg = EmbeddedRegistry(port, tmp_path)
        with pytest.raises(FactoryError, match=rf"port {port} on 127.0.0.1 is taken"):
            reg.up(timeout=2)
    assert not (tmp_path / "registry.pid").exists()


def test_down_when_not_running_says_so(tmp_path: Path) -> None:
    assert EmbeddedRegistry(1, tmp_path).down() is False
