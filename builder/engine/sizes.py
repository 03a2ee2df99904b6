"""What an image weighs, layer by layer: compressed sizes from its manifest in the
registry, uncompressed sizes and the step that made each layer from the engine's
copy (`docker history`). Only the image itself is read."""

from __future__ import annotations

import json

from builder.engine import commands as tools
from builder.engine import oci
from builder.model.records import ImageSize, LayerSize


def _local(reference: str, platform: str, pull: bool) -> bool:
    """Whether the engine holds REFERENCE (pulling it when allowed)."""
    if tools.run(["docker", "image", "inspect", reference], check=False, timeout=60).returncode == 0:
        return True
    if not pull:
        return False
    return tools.run(["docker", "pull", "--quiet", "--platform", platform, reference], check=False,
                     timeout=1800).returncode == 0


def measure(reference: str, platform: str, *, pull: bool = True) -> ImageSize:
    """REFERENCE (repository@digest, one platform): total and per-layer sizes, oldest layer first.
    Without the image in the engine (and PULL false), only the compressed figures."""
    manifest = oci.raw_manifest(reference)
    blobs = manifest.get("layers")
    compressed_layers = [int(b.get("size", 0)) for b in blobs if isinstance(b, dict)] \
        if isinstance(blobs, list) else []
    config_blob = manifest.get("config")
    compressed = sum(compressed_layers) + (int(config_blob.get("size", 0)) if isinstance(config_blob, dict) else 0)
    if not _local(reference, platform, pull):
        return ImageSize(compressed=compressed, uncompressed=None,
                         layers=[LayerSize(step="", compressed=c, uncompressed=None) for c in compressed_layers])
    # the config's history says which steps made a layer (empty_layer); `docker history`
    # has the same entries, newest first, with the unpacked size of each
    config = json.loads(oci.config_of(reference))
    steps = config.get("history") or []
    unpacked = [int(h.get("Size") or 0) for h in reversed([json.loads(line) for line in tools.run(
        ["docker", "history", "--no-trunc", "--human=false", "--format", "{{json .}}", reference], timeout=120,
    ).stdout.splitlines() if line.strip()])]
    if len(unpacked) != len(steps):
        unpacked = [0] * len(steps)
    made = [(str(step.get("created_by", "")), size) for step, size in zip(steps, unpacked, strict=True)
            if not step.get("empty_layer")]
    if len(made) != len(compressed_layers):  # a history that doesn't describe the layers: sizes only
        made = [("", 0)] * len(compressed_layers)
    layers = [LayerSize(step=_tidy(step), compressed=c, uncompressed=u)
              for (step, u), c in zip(made, compressed_layers, strict=True)]
    return ImageSize(compressed=compressed, uncompressed=oci.local_image_size(reference), layers=layers)


def _tidy(created_by: str) -> str:
    """The Dockerfile step as a person reads it: no shell wrapper, no build-arg prefix."""
    text = " ".join(created_by.split())
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        text = text.removeprefix(prefix)
    if text.startswith("RUN |"):
        # 'RUN |3 A=1 B=2 C=3 /bin/bash -o pipefail -c CMD': drop the build args and the shell
        for shell in ("/bin/bash -o pipefail -c ", "/bin/sh -c "):
            if shell in text:
                return "RUN " + text.split(shell, 1)[1].removesuffix(" # buildkit")[:160]
        parts = text.split(" ")
        count = int(parts[1][1:]) if parts[1][1:].isdigit() else 0
        text = "RUN " + " ".join(parts[2 + count:])
    return text.removesuffix(" # buildkit").replace("/bin/bash -o pipefail -c ", "")[:160]
