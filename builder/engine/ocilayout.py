"""A one-layer OCI image written from a root file system tarball, byte for byte the
same on every machine: the layer is gzip-compressed with no time or file name in its
header and a fixed level, and the config has a fixed `created` and history.

BuildKit can't do this for a FROM-scratch image (its config says when it was
built), so the root image is written here and pushed as it is (`oci.push_layout`).
The only thing outside the inputs that shapes the bytes is the deflate
implementation: zlib gives the same stream for the same level across its 1.2 and
1.3 releases; zlib-ng does not.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

EPOCH = "1970-01-01T00:00:00Z"
GZIP_LEVEL = 6
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "root"
"""The name of the one image in the layout (`oci:DIR:root`)."""
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayoutImage:
    path: Path
    """The OCI image layout folder."""
    digest: str
    """The manifest's digest: what the image is called in every registry."""
    diff_id: str
    compressed_size: int


class _Hashing:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def _canonical(document: dict[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _put_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def image_config(*, arch: str, diff_id: str, labels: dict[str, str], cmd: list[str], created_by: str) -> bytes:
    platform: dict[str, object] = {"architecture": arch, "os": "linux"}
    if arch == "arm64":
        platform["variant"] = "v8"  # what BuildKit writes for linux/arm64, so indexes list it alike
    config: dict[str, object] = {
        **platform,
        "created": EPOCH,
        "config": {"Env": [DEFAULT_PATH], "Cmd": cmd, "Labels": dict(sorted(labels.items()))},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": created_by}],
    }
    return _canonical(config)


def write_image(
    tar: Path, out: Path, *, arch: str, labels: dict[str, str], cmd: list[str], created_by: str,
) -> LayoutImage:
    """Write TAR as a one-layer image into the OCI layout OUT (replaced whole, so a
    half-written layout is never left under that name)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        blobs = work / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        raw = hashlib.sha256()
        partial = blobs / "layer.partial"
        with open(tar, "rb") as source, open(partial, "wb") as sink:
            hashing = _Hashing(sink)
            # filename '' and mtime 0: nothing of this machine or moment in the header
            with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=hashing,
                               mtime=0) as packed:
                while chunk := source.read(_CHUNK):
                    raw.update(chunk)
                    packed.write(chunk)
        layer_digest = f"sha256:{hashing.sha.hexdigest()}"
        os.replace(partial, blobs / hashing.sha.hexdigest())
        diff_id = f"sha256:{raw.hexdigest()}"
        config_digest, config_size = _put_blob(blobs, image_config(
            arch=arch, diff_id=diff_id, labels=labels, cmd=cmd, created_by=created_by))
        manifest = _canonical({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": hashing.size}],
        })
        manifest_digest, manifest_size = _put_blob(blobs, manifest)
        (work / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (work / "index.json").write_bytes(_canonical({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": MANIFEST_TYPE, "digest": manifest_digest, "size": manifest_size,
                           "annotations": {"org.opencontainers.image.ref.name": REF_NAME}}],
        }))
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return LayoutImage(path=out, digest=manifest_digest, diff_id=diff_id, compressed_size=hashing.size)


def read_image(out: Path) -> LayoutImage | None:
    """The image a complete layout written by `write_image` holds; None when there is none."""
    try:
        index = json.loads((out / "index.json").read_text())
        entry = index["manifests"][0]
        blobs = out / "blobs" / "sha256"
        manifest = json.loads((blobs / entry["digest"].split(":", 1)[1]).read_bytes())
        config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_bytes())
        layer = manifest["layers"][0]
        if not (blobs / layer["digest"].split(":", 1)[1]).is_file():
            return None
        return LayoutImage(path=out, digest=entry["digest"], diff_id=config["rootfs"]["diff_ids"][0],
                           compressed_size=layer["size"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
