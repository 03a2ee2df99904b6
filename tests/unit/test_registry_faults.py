from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from builder.engine import cosign, oci
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


def test_down_never_signals_a_process_that_is_not_the_registry(tmp_path: Path) -> None:
    """A stale pid file whose number the system gave to another program: left alone."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "registry.pid").write_text(f"{bystander.pid}\n")
        assert EmbeddedRegistry(1, tmp_path).down() is False
        assert bystander.poll() is None  # still running
        assert not (tmp_path / "registry.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_loopback_is_parsed_from_the_host_never_matched_by_prefix() -> None:
    local = ["localhost:5000/a/b", "localhost/a", "127.0.0.1:5000/x", "127.9.8.7/x", "[::1]:5000/x"]
    remote = ["localhost.example.com:5000/x", "127.example.com/x", "ghcr.io/x", "10.0.0.1:5000/x", "[fe80::1]/x"]
    assert all(oci.loopback(r) for r in local)
    assert not any(oci.loopback(r) for r in remote)
    assert cosign.insecure_flags("localhost.example.com/x@sha256:" + "a" * 64) == []
    assert cosign.insecure_flags("127.0.0.1:5000/x@sha256:" + "a" * 64) == ["--allow-insecure-registry"]
