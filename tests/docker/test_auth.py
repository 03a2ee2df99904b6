"""Registries that need credentials: a real registry with htpasswd auth, like GHCR asks for a token."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from builder.engine.registry import EmbeddedRegistry
from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, forget_local_images, free_port

USER, PASSWORD = "ci-bot", "s3cret-token-value"


@pytest.fixture(scope="module")
def auth_registry(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRegistry]:
    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()}\n")
    reg = EmbeddedRegistry(free_port(), root, htpasswd=htpasswd)
    reg.up()
    yield reg
    reg.down()
    forget_local_images(reg.address)


def cli(docker_config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI with a credential store of its own, so the user's docker login is untouched."""
    return subprocess.run(
        [str(PROJECT_DIR / ".venv" / "bin" / "hjk-images"), "--config", str(FIXTURE_CONFIG), *args],
        input=stdin, capture_output=True, text=True, cwd=PROJECT_DIR, check=False,
        env={**os.environ, "DOCKER_CONFIG": str(docker_config)},
    )


def test_wrong_credentials_fail_cleanly_and_push_nothing(auth_registry: EmbeddedRegistry, tmp_path: Path) -> None:
    wrong = "not-the-token"
    login = cli(tmp_path, "login", auth_registry.address, "-u", USER, "--password-stdin", stdin=wrong)
    assert login.returncode == 1
    assert f"login to {auth_registry.address} as {USER} failed" in login.stderr
    assert wrong not in login.stdout + login.stderr
    push = cli(tmp_path, "root", "bootstrap", "--platform", "linux/amd64", "--registry", auth_registry.address)
    assert push.returncode == 1 and "Traceback" not in push.stderr
    assert "the registry wants credentials, or refused them" in push.stderr
    assert not (auth_registry.data_dir / "docker" / "registry" / "v2" / "repositories").exists()


def test_right_credentials_push(auth_registry: EmbeddedRegistry, tmp_path: Path) -> None:
    login = cli(tmp_path, "login", auth_registry.address, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert login.returncode == 0, login.stderr
    assert PASSWORD not in login.stdout + login.stderr
    push = cli(tmp_path, "root", "bootstrap", "--platform", "linux/amd64", "--registry", auth_registry.address)
    assert push.returncode == 0, push.stderr
    repositories = auth_registry.data_dir / "docker" / "registry" / "v2" / "repositories"
    assert (repositories / "fixture" / "images-root").is_dir()
