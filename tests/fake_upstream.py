"""A stand-in for the language download sites (python.org, nodejs.org,
static.rust-lang.org), served from a local HTTP server in the layouts the real
version managers expect:

- python/<sha256>: python-build's mirror protocol (PYTHON_BUILD_MIRROR_URL), plus
  python-build definitions naming those checksums. CPython 3.11.2 is the real
  source: Debian's orig tarball is python.org's Python-3.11.2.tgz byte for byte,
  the checksum pyenv's own definition names. Other versions are a tiny source
  tree whose configure and Makefile install a stand-in interpreter: compiling
  real CPython under arm64 emulation would take an hour.
- node/v<version>/: nodejs.org's layout (binary tarballs and SHASUMS256.txt). The
  Node inside is the real one, repackaged from the npm registry's
  node-linux-<arch> packages.
- rust/dist/: a rustup release channel (manifest v2, its .sha256, component
  tarballs in rust-installer layout) whose rustc and cargo are stand-ins.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RUST_TARGETS = {"amd64": "x86_64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}
NODE_ARCHES = {"amd64": "x64", "arm64": "arm64"}


@dataclass(frozen=True)
class Upstream:
    url: str
    """http://127.0.0.1:PORT; python/, node/ and rust/ below it."""
    definitions: Path
    """python-build definitions for the served Python versions."""

    @property
    def sources(self) -> dict[str, str]:
        """The `language_sources` of a factory overlay pointing at this server."""
        return {
            "python_mirror": f"{self.url}/python",
            "python_definitions": str(self.definitions),
            "node_mirror": f"{self.url}/node",
            "rust_dist_server": f"{self.url}/rust",
        }


def tar_gz(members: dict[str, bytes], executable: frozenset[str] = frozenset()) -> bytes:
    """A gzipped tarball with an entry for every folder, as release tarballs have;
    scripts and the names in EXECUTABLE are executable."""
    folders = {str(parent) for name in members for parent in Path(name).parents if str(parent) != "."}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if data.startswith(b"#!") or name in executable else 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    # the gzip header's time fixed too: the same members make the same bytes (and checksum) every run
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FAKE_CONFIGURE = """#!/bin/sh
# Stand-in for CPython's configure: remembers --prefix, ignores the rest.
prefix=/usr/local
for arg; do case $arg in --prefix=*) prefix=${arg#--prefix=} ;; esac; done
printf 'PREFIX = %s\\n' "$prefix" > Makefile.inc
exit 0
"""

FAKE_MAKEFILE = """include Makefile.inc
all:
\t@echo building the stand-in Python {version}
install altinstall:
\tmkdir -p $(PREFIX)/bin $(PREFIX)/lib/python{short}
\tinstall -m 0755 python.sh $(PREFIX)/bin/python{short}
\tln -sf python{short} $(PREFIX)/bin/python3
"""

FAKE_PYTHON = """#!/bin/sh
# Stand-in interpreter: answers what python-build and the smoke checks ask.
case "$1" in
  --version|-V) echo "Python {version}"; exit 0 ;;
esac
for arg; do
  if [ "$arg" = ensurepip ]; then
    bin=$(dirname "$0")
    printf '#!/bin/sh\\necho "pip 24.0 (python {short})"\\n' > "$bin/pip{short}"
    chmod 0755 "$bin/pip{short}"
    ln -sf pip{short} "$bin/pip3"
  fi
done
exit 0
"""


def _python(folder: Path, version: str) -> None:
    short = ".".join(version.split(".")[:2])
    top = f"Python-{version}"
    tarball = tar_gz({
        f"{top}/configure": FAKE_CONFIGURE.encode(),
        f"{top}/Makefile": FAKE_MAKEFILE.format(version=version, short=short).encode(),
        f"{top}/python.sh": FAKE_PYTHON.format(version=version, short=short).encode(),
    })
    checksum = _sha256(tarball)
    (folder / "python").mkdir(parents=True, exist_ok=True)
    (folder / "python" / checksum).write_bytes(tarball)
    # the URL is python.org's; python-build asks the mirror for the checksum first
    url = f"https://www.python.org/ftp/python/{version}/{top}.tgz#{checksum}"
    verify = f"verify_py{short.replace('.', '')}"
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "definitions" / version).write_text(f'install_package "{top}" "{url}" standard {verify} ensurepip\n')


REAL_PYTHON = "3.11.2"
REAL_PYTHON_SOURCE = "http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"
REAL_PYTHON_INSTALL = (
    'install_package "Python-3.11.2" "https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz'
    '#2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849" standard verify_py311 copy_python_gdb ensurepip'
)
"""The .tgz line of pyenv's own 3.11.2 definition. pyenv prefers the .tar.xz, which
has no copy within reach, so the served definition keeps only this line."""


def _download(url: str, target: Path) -> None:
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=300) as response:
            partial = target.with_suffix(".partial")
            partial.write_bytes(response.read())
            partial.rename(target)


def _real_python(folder: Path, cache: Path) -> None:
    checksum = REAL_PYTHON_INSTALL.split("#")[1].split('"')[0]
    cached = cache / f"Python-{REAL_PYTHON}.tgz"
    _download(REAL_PYTHON_SOURCE, cached)
    source = cached.read_bytes()
    if _sha256(source) != checksum:
        raise RuntimeError(f"{REAL_PYTHON_SOURCE} is not python.org's Python-{REAL_PYTHON}.tgz")
    (folder / "python").mkdir(parents=True, exist_ok=True)
    (folder / "python" / checksum).write_bytes(source)
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    (folder / "definitions" / REAL_PYTHON).write_text(
        "export PYTHON_BUILD_CONFIGURE_WITH_OPENSSL=1\nexport PYTHON_BUILD_TCLTK_USE_PKGCONFIG=1\n"
        f"{REAL_PYTHON_INSTALL}\n"
    )


def _node(folder: Path, version: str, npm_cache: Path) -> None:
    """nodejs.org's layout for VERSION, from the npm registry's node-linux-<arch> tarballs."""
    release = folder / "node" / f"v{version}"
    release.mkdir(parents=True, exist_ok=True)
    sums = []
    for arch in NODE_ARCHES.values():
        package = f"node-linux-{arch}-{version}.tgz"
        cached = npm_cache / package
        _download(f"https://registry.npmjs.org/node-linux-{arch}/-/{package}", cached)
        name = f"node-v{version}-linux-{arch}.tar.gz"
        members: dict[str, bytes] = {}
        executable: set[str] = set()
        with tarfile.open(cached) as source:
            for member in source.getmembers():
                extracted = source.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    renamed = member.name.replace("package/", f"node-v{version}-linux-{arch}/", 1)
                    members[renamed] = extracted.read()
                    if member.mode & 0o111 or "/bin/" in renamed:
                        executable.add(renamed)
        data = tar_gz(members, frozenset(executable))
        (release / name).write_bytes(data)
        sums.append(f"{_sha256(data)}  {name}\n")
    (release / "SHASUMS256.txt").write_text("".join(sums))


def _rust_component(component: str, target: str, files: dict[str, bytes]) -> bytes:
    """A component tarball in rust-installer layout (what rustup unpacks)."""
    top = f"{component}-{target}"
    members = {
        f"{top}/rust-installer-version": b"3\n",
        f"{top}/components": f"{component}\n".encode(),
        f"{top}/{component}/manifest.in": "".join(f"file:{path}\n" for path in files).encode(),
    }
    members.update({f"{top}/{component}/{path}": data for path, data in files.items()})
    return tar_gz(members)


def _rust(folder: Path, version: str, base_url: str) -> None:
    dist = folder / "rust" / "dist"
    stamp = "2024-11-28"
    (dist / stamp).mkdir(parents=True, exist_ok=True)
    lines = ['manifest-version = "2"', f'date = "{stamp}"', ""]
    contents = {
        "rustc": {"bin/rustc": f'#!/bin/sh\necho "rustc {version} (stand-in {stamp})"\n'.encode()},
        "cargo": {"bin/cargo": f'#!/bin/sh\necho "cargo {version} (stand-in {stamp})"\n'.encode()},
        "rust-std": {"lib/rustlib/stand-in-std": b"std\n"},
    }
    for component, files in contents.items():
        lines += [f"[pkg.{component}]", f'version = "{version} (stand-in {stamp})"', ""]
        for target in RUST_TARGETS.values():
            data = _rust_component(component, target, files)
            name = f"{component}-{version}-{target}.tar.gz"
            (dist / stamp / name).write_bytes(data)
            lines += [
                f"[pkg.{component}.target.{target}]", "available = true",
                f'url = "{base_url}/rust/dist/{stamp}/{name}"', f'hash = "{_sha256(data)}"', "",
            ]
    lines += ["[pkg.rust]", f'version = "{version} (stand-in {stamp})"', ""]
    for target in RUST_TARGETS.values():
        lines += [f"[pkg.rust.target.{target}]", "available = true", 'url = ""', 'hash = ""']
        lines += [
            "components = [" + ", ".join(
                f'{{ pkg = "{component}", target = "{target}" }}' for component in contents
            ) + "]",
            "extensions = []", "",
        ]
    profile = ", ".join(f'"{component}"' for component in contents)
    lines += ["[profiles]", f"minimal = [{profile}]", f"default = [{profile}]", f"complete = [{profile}]", ""]
    lines += ["[renames]", ""]
    manifest = "\n".join(lines).encode()
    name = f"channel-rust-{version}.toml"
    (dist / name).write_bytes(manifest)
    (dist / f"{name}.sha256").write_text(f"{_sha256(manifest)}  {name}\n")


@contextmanager
def serve_upstream(
    folder: Path, port: int, cache: Path,
    python: tuple[str, ...] = (), node: tuple[str, ...] = (), rust: tuple[str, ...] = (),
) -> Iterator[Upstream]:
    """Write the downloads for the given versions into FOLDER and serve them on loopback.
    Python REAL_PYTHON is the real source; real downloads are kept in CACHE."""
    url = f"http://127.0.0.1:{port}"
    for version in python:
        if version == REAL_PYTHON:
            _real_python(folder, cache)
        else:
            _python(folder, version)
    for version in node:
        _node(folder, version, cache)
    for version in rust:
        _rust(folder, version, url)
    (folder / "definitions").mkdir(parents=True, exist_ok=True)
    with serve_folder(folder, port) as served:
        yield Upstream(url=served, definitions=folder / "definitions")


@contextmanager
def serve_folder(folder: Path, port: int) -> Iterator[str]:
    """FOLDER over HTTP on loopback (quietly); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
