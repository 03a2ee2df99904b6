"""Language versions preinstalled through the real version managers of base, on
both platforms, from a local stand-in for their download sites (tests/fake_upstream.py),
and real CPython compiled by pyenv from that mirror."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from builder.engine import oci
from builder.engine.state import STATE_ENV
from builder.model.records import BuildRecord, TestResults, load
from tests.conftest import PROJECT_DIR, fork_variants, free_port, hjk
from tests.e2e.conftest import Release
from tests.fake_upstream import REAL_PYTHON, REAL_PYTHON_INSTALL, Upstream, serve_upstream

POLYGLOT = """name: polyglot
description: base plus preinstalled Python, Node and Rust
parent: base
template: variant.Dockerfile.j2
languages:
  python: ['3.12.8', '3.11.9']
  node: ['22.14.0']
  rust: ['1.83.0']
"""


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    downloads = Path(os.environ[STATE_ENV]) / "cache" / "language-downloads"
    with serve_upstream(tmp_path_factory.mktemp("upstream"), steady_port(UPSTREAM_PORT), downloads,
                        python=("3.12.8", "3.11.9", REAL_PYTHON), node=("22.14.0",), rust=("1.83.0",)) as served:
        yield served


UPSTREAM_PORT = 47631
"""The mirror's URL and its files (same bytes every run) are part of the build contexts, so on
one port a later run reuses the images an earlier one built (a compiled CPython among them)."""


def steady_port(preferred: int) -> int:
    """PREFERRED when it is free, else any free port (then the language images build anew)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def fork_with(tmp_path: Path, upstream: Upstream, variants: dict[str, str]) -> Path:
    """A fork whose languages download from UPSTREAM. The overlay drops the immutable
    `-sha-<commit>` tag, which a second run of the same commit would be refused to move."""
    overlay = fork_variants(tmp_path, PROJECT_DIR / "variants", yaml.safe_dump({
        "language_sources": upstream.sources, "tags": {"sha": None},
    }), with_lock=True)
    for name, body in variants.items():
        (tmp_path / "variants" / f"{name}.yaml").write_text(body)
    return overlay


def test_languages_install_through_the_managers_and_publish(
    released: Release, upstream: Upstream, tmp_path: Path,
) -> None:
    overlay = str(fork_with(tmp_path, upstream, {"polyglot": POLYGLOT}))
    registry = released.registry.address
    build_record, results = tmp_path / "build.json", tmp_path / "test.json"
    hjk("--config", overlay, "build", "--variant", "polyglot", "--registry", registry,
        "--network", "host", "--record", str(build_record))
    builds = [b for b in load(build_record, BuildRecord).builds if b.variant == "polyglot"]
    # reused on a machine whose e2e registry already holds this exact build
    assert {b.platform for b in builds} == {"linux/amd64", "linux/arm64"}
    assert all(b.status in ("built", "reused") for b in builds)

    hjk("--config", overlay, "test", "--variant", "polyglot", "--record", str(build_record),
        "--results", str(results))
    images = load(results, TestResults).images
    assert {i.platform for i in images} == {"linux/amd64", "linux/arm64"}
    for image in images:
        outcome = {c.name: (c.status, c.detail) for c in image.checks}
        # base's checks ran too, and each language version answered through its manager
        assert outcome["base: plain exec runs as the image user"][0] == "passed"
        assert outcome["python 3.12.8 is the default"] == ("passed", "Python 3.12.8")
        assert outcome["python 3.11.9 through pyenv"] == ("passed", "Python 3.11.9")
        assert outcome["node 22.14.0 through nodenv"] == ("passed", "v22.14.0")
        assert outcome["rust 1.83.0 is the default"][0] == "passed"

    hjk("--config", overlay, "publish", "--variant", "polyglot", "--record", str(build_record),
        "--results", str(results))
    index = oci.inspect(f"{registry}/gilmanlab/headjack:polyglot")
    assert set(index.platforms) == {"linux/amd64", "linux/arm64"}


def test_a_language_version_that_does_not_exist_fails_clearly_and_publishes_nothing(
    released: Release, upstream: Upstream, tmp_path: Path,
) -> None:
    overlay = str(fork_with(tmp_path, upstream, {
        "nopython": POLYGLOT.replace("name: polyglot", "name: nopython").replace("'3.12.8', '3.11.9'", "'3.99.1'"),
        "nonode": POLYGLOT.replace("name: polyglot", "name: nonode").replace("'22.14.0'", "'22.99.0'"),
        "norust": POLYGLOT.replace("name: polyglot", "name: norust").replace("'1.83.0'", "'1.99.0'"),
    }))
    registry = released.registry.address
    proc = hjk("--config", overlay, "release", "--registry", registry, "--network", "host",
               "--platform", "linux/amd64", "--variant", "nopython", "--variant", "nonode", "--variant", "norust",
               check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "release stopped at stage 'build'" in output
    assert "python-build: definition not found: 3.99.1" in output
    assert "install-language: node: version 22.99.0 not found" in output
    assert "could not download nonexistent rust version `1.99.0" in output
    for name in ("nopython", "nonode", "norust"):
        assert not oci.exists(f"{registry}/gilmanlab/headjack:{name}")


def test_go_without_goenv_in_the_image_says_so(released: Release, upstream: Upstream, tmp_path: Path) -> None:
    """goenv is published on GitHub only; where the build could not fetch it, asking
    for a Go version fails naming the missing manager rather than a missing command."""
    omitted = any(c.name == "tool goenv" and c.status == "omitted"
                  for image in released.results.images for c in image.checks)
    overlay = str(fork_with(tmp_path, upstream, {
        "gopher": "name: gopher\nparent: base\ntemplate: variant.Dockerfile.j2\nlanguages:\n  go: ['1.23.4']\n",
    }))
    proc = hjk("--config", overlay, "build", "--registry", released.registry.address, "--platform", "linux/amd64",
               "--variant", "gopher", "--record", str(tmp_path / "b.json"), check=False)
    output = proc.stdout + proc.stderr
    if omitted:
        assert proc.returncode != 0
        assert "install-language: go: needs goenv, which is not in this image (left out when the image was built" \
            in output
    else:  # a machine that reaches GitHub and go.dev installs it
        assert proc.returncode == 0, output


CPYTHON = f"""name: cpython
description: base plus CPython {REAL_PYTHON} compiled by pyenv
parent: base
template: variant.Dockerfile.j2
languages:
  python: ['{REAL_PYTHON}']
checks:
  commands:
    - name: the standard library's C modules were built
      run: >-
        python -c 'import ssl, sqlite3, readline, ctypes, lzma, bz2, zlib, curses, tkinter;
        print(ssl.OPENSSL_VERSION)'
      expect: ^OpenSSL 3
    - {{name: pip from ensurepip, run: pip --version, expect: 'python 3\\.11'}}
"""


def test_pyenv_compiles_real_cpython_from_an_org_mirror(released: Release, upstream: Upstream, tmp_path: Path) -> None:
    """amd64 only: compiling CPython under arm64 emulation would take about an hour.
    Proves base's build headers are enough for pyenv and that the mirror protocol works."""
    base = next(b for b in released.build.builds if b.variant == "base" and b.platform == "linux/amd64")
    # pyenv's own definitions, wherever pyenv is installed (beside its libexec)
    pyenv_definition = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", f"{base.staging_tag}@{base.digest}", "-c",
         'cat "$(dirname "$(readlink -f "$(command -v pyenv)")")/../plugins/python-build/share/python-build/'
         f'{REAL_PYTHON}"'],
        capture_output=True, text=True, check=True,
    ).stdout
    assert REAL_PYTHON_INSTALL in pyenv_definition  # the served definition is pyenv's own, checksum and all

    overlay = str(fork_with(tmp_path, upstream, {"cpython": CPYTHON}))
    build_record, results = tmp_path / "build.json", tmp_path / "test.json"
    hjk("--config", overlay, "build", "--variant", "cpython", "--platform", "linux/amd64",
        "--registry", released.registry.address, "--network", "host", "--record", str(build_record))
    hjk("--config", overlay, "test", "--variant", "cpython", "--record", str(build_record),
        "--results", str(results))
    (image,) = load(results, TestResults).images
    outcome = {c.name: (c.status, c.detail) for c in image.checks}
    assert outcome[f"python {REAL_PYTHON} is the default"] == ("passed", f"Python {REAL_PYTHON}")
    assert outcome["the standard library's C modules were built"][0] == "passed"
    assert outcome["pip from ensurepip"][0] == "passed"
    assert image.passed
