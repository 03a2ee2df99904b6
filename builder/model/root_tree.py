"""The factory's own files every image on the root carries: the build helpers in
/usr/local/bin (kept for Dockerfiles that extend the images) and the files the runtime
mounts over in each RUN step.

A bootstrapped root holds them in its one layer, written with fixed times, so no build
step adds or stamps a folder for them. A root named by reference gets them by one COPY
of the tree (where BuildKit stamps the folders it merges into with the build's time
unless it rewrites timestamps).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from builder.model.errors import FactoryError

HELPERS = ("with-extra-ca", "install-archive", "verify-apt-versions", "prune-foreign-binaries", "strip-debug-info",
           "settle-times", "sort-git-config")
"""Helper scripts from the templates' files/common, in this order."""

MOUNT_POINT_STUBS = {
    "etc/hosts": b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/hostname": b"",
    "etc/resolv.conf": b"",
    "run/secrets/extra_ca": b"",
}
"""Files the runtime mounts over in every RUN step (the network files, the build secret).
When they are missing, the engine creates them for the step and removes them after it,
which moves the times of /etc, /run and /run/secrets in that step's layer: present, they
are mounted over and every folder keeps its time (engines run their own over them). In a
bootstrapped root they also replace the build host's own hostname and resolv.conf, which
the bootstrap copies in."""

FOLDERS = ("run/secrets",)
"""Folders of the tree a minimal Debian root doesn't have."""


@dataclass(frozen=True)
class TreeFile:
    path: str
    """Relative to /, without a leading slash."""
    data: bytes
    mode: int


def root_tree(templates_dir: Path) -> tuple[TreeFile, ...]:
    """The tree's files, helpers first, read from TEMPLATES_DIR/files/common."""
    folder = templates_dir / "files" / "common"
    files = []
    for name in HELPERS:
        try:
            data = (folder / name).read_bytes()
        except OSError as exc:
            raise FactoryError(f"{folder / name}: build helper can't be read ({exc.strerror})") from exc
        files.append(TreeFile(f"usr/local/bin/{name}", data, 0o755))
    files += [TreeFile(path, data, 0o644) for path, data in MOUNT_POINT_STUBS.items()]
    return tuple(files)


def tree_digest(tree: tuple[TreeFile, ...]) -> str:
    """What the tree is, as a hex digest: part of every key of an image that holds it."""
    sha = hashlib.sha256()
    for folder in FOLDERS:
        sha.update(f"dir {folder}\n".encode())
    for item in tree:
        sha.update(f"file {item.path} {item.mode:o} {len(item.data)}\n".encode())
        sha.update(item.data)
    return sha.hexdigest()
