"""Shared fixtures. Tiers: unit (no daemon), `docker` (real engine, registry, small
fixtures, both platforms) and `slow` (the real variants end to end).

Docker tests never skip: when the engine is missing they fail, naming the fix.
Every container a test starts carries TEST_LABEL and is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.engine import commands as tools
from builder.engine.registry import EmbeddedRegistry
from builder.engine.state import STATE_ENV, state_dir
from builder.model.variants import VariantSet, load_variant_files, resolve

PROJECT_DIR = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:12]
TEST_LABEL = "io.headjack.images.test-run"

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def _isolate_state() -> Path:
    """Tests get their own state folder (records, locks, registries) but share the
    keyed caches with real runs: a root file system takes minutes on arm64."""
    shared_cache = state_dir() / "cache"
    shared_cache.mkdir(parents=True, exist_ok=True)
    isolated = Path(tempfile.mkdtemp(prefix="hjk-test-state-"))
    (isolated / "cache").symlink_to(shared_cache)
    os.environ[STATE_ENV] = str(isolated)
    return isolated


TEST_STATE = _isolate_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A green run leaves nothing behind; a red one keeps its records and build logs to read."""
    if exitstatus == 0:
        shutil.rmtree(TEST_STATE, ignore_errors=True)  # the cache is a symlink: removed, not followed
    else:
        print(f"\ntest state kept for inspection: {TEST_STATE}")
FIXTURE_CONFIG = PROJECT_DIR / "tests" / "fixtures" / "fixture.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TIER_MARKERS = {"docker": pytest.mark.docker, "e2e": pytest.mark.slow}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's tier is its folder: tests/docker is the docker tier, tests/e2e the slow one."""
    for item in items:
        folder = item.path.parent.name
        if folder in TIER_MARKERS:
            item.add_marker(TIER_MARKERS[folder])


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not tools.docker_answers():
        pytest.fail("the Docker engine does not answer `docker info`: run `make setup` first")


def forget_local_images(address: str) -> None:
    """Remove the engine's copies of images pulled from a test registry (smoke tests pull them)."""
    listed = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}@{{.ID}}"], capture_output=True, text=True, check=False,
    ).stdout.split()
    ids = sorted({line.split("@", 1)[1] for line in listed if line.startswith(f"{address}/")})
    if ids:
        subprocess.run(["docker", "image", "rm", "-f", *ids], capture_output=True, check=False)


@pytest.fixture(scope="session")
def test_registry(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRegistry]:
    """A real registry process on a free loopback port, removed with its data at the end."""
    reg = EmbeddedRegistry(free_port(), tmp_path_factory.mktemp("registry"))
    reg.up()
    yield reg
    reg.down()
    forget_local_images(reg.address)


@pytest.fixture(scope="session", autouse=True)
def _remove_leftover_containers() -> Iterator[None]:
    yield
    if not tools.docker_answers():
        return
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={TEST_LABEL}={RUN_ID}"],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def fork_variants(tmp_path: Path, variants: Path, overlay: str, with_lock: bool = False) -> Path:
    """A copy of a variants folder a test may edit, and an overlay config selecting it.

    Returns the overlay's path. The copy gets the folder's lock only when asked:
    without one, builds are not gated on it.
    """
    shutil.copytree(variants, tmp_path / "variants")
    if with_lock:
        shutil.copy(variants.parent / "images.lock.yaml", tmp_path / "images.lock.yaml")
    path = tmp_path / "overlay.yaml"
    path.write_text(overlay if "variants_dir:" in overlay else overlay + "variants_dir: variants\n")
    return path


def hjk(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a user would, from the project folder."""
    exe = PROJECT_DIR / ".venv" / "bin" / "hjk-images"
    proc = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=PROJECT_DIR,
        env={**os.environ, **(env or {})}, check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hjk-images {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def npm_ls_packages(tree: dict[str, object]) -> set[str]:
    """name@version of every installed package in `npm ls --all --long --json` (missing ones
    left out). An aliased dependency (`"codex-linux-x64": "npm:@openai/codex@..."`) is keyed
    by its alias; `--long` gives the name of the package really installed."""
    found: set[str] = set()
    for key, node in (tree.get("dependencies") or {}).items():  # type: ignore[attr-defined]
        if isinstance(node, dict) and node.get("version") and not node.get("missing"):
            found |= {f"{node.get('name') or key}@{node['version']}"} | npm_ls_packages(node)
    return found


HOST_USER = "hjk-dev"
HOST_UID = 1002


@pytest.fixture(scope="session")
def host_user(docker_engine: None) -> str:
    """A typical Linux user for the Dev Containers CLI: not root, uid other than 1000, in the
    docker group (made here when missing; the tiers run as root in CI)."""
    import pwd

    try:
        account = pwd.getpwnam(HOST_USER)
    except KeyError:
        if os.geteuid() != 0:
            pytest.fail(f"host user {HOST_USER} is missing and only root can make it: "
                        f"useradd -m -u {HOST_UID} -G docker {HOST_USER}")
        proc = subprocess.run(["useradd", "-m", "-u", str(HOST_UID), "-G", "docker", HOST_USER],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"useradd {HOST_USER} failed: {proc.stderr}"
        account = pwd.getpwnam(HOST_USER)
    assert account.pw_uid not in (0, 1000), f"{HOST_USER} must have a uid other than 0 and 1000"
    return HOST_USER


def devcontainer_cli() -> str:
    cli = PROJECT_DIR / ".tools" / "node_modules" / ".bin" / "devcontainer"
    if not cli.is_file():
        pytest.fail("the Dev Containers CLI is missing from .tools/: run `make setup`")
    return str(cli)


def load_variants(folder: Path, root_platforms: list[str]) -> VariantSet:
    """The variant files of FOLDER, resolved (what the runner does with a project's)."""
    return resolve(load_variant_files(folder), root_platforms)
