"""buildx through python-on-whales: one platform per call, pushed, its log streamed to a file.

python-on-whales runs the docker CLI itself (so a stop signal reaches it as our
child, see `commands.stop_children`); its output passes through the same
redaction as every other command, and its failures become `CommandError`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.engine.commands import CommandError, log_tail, redact
from builder.engine.containers import docker_client


@dataclass(frozen=True)
class BuildOutcome:
    digest: str
    """Manifest digest of the pushed single-platform image."""


def buildx_build(
    *,
    context: Path,
    dockerfile: Path,
    platform: str,
    tags: Sequence[str],
    log_path: Path,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    builder: str | None = None,
    no_cache: bool = False,
    network: str | None = None,
    load: bool = False,
    cache_from: Sequence[str] = (),
    cache_to: str | None = None,
    rewrite_timestamp: bool = False,
) -> BuildOutcome:
    """Build one platform with buildx and push it (or, with LOAD, load it into the local
    engine: the digest is then the image's id); stream the whole log to `log_path`.
    CACHE_FROM and CACHE_TO are buildx cache specs (`type=registry,ref=...`, `type=inline`).
    REWRITE_TIMESTAMP (BuildKit >= 0.13) clamps every time in the layers to SOURCE_DATE_EPOCH=0,
    so a layer's digest follows from its files alone (see `rewrites_timestamps`)."""
    from python_on_whales.exceptions import DockerException

    metadata = log_path.with_suffix(".metadata.json")
    metadata.unlink(missing_ok=True)
    client = docker_client()
    args = dict(build_args or {})
    output: dict[str, str] = {}
    if rewrite_timestamp:  # the exporter spelled out: --push/--load take no options
        output = {"type": "docker"} if load else {"type": "image", "push": "true"}
        output["rewrite-timestamp"] = "true"
        args["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(redact(f"# buildx build --platform {platform} -f {dockerfile} {context}\n"))
        try:
            stream = client.buildx.build(
                context, file=dockerfile, platforms=[platform], tags=list(tags),
                build_args=args, labels=dict(labels or {}),
                secrets=list(secrets), builder=builder, cache=not no_cache,
                push=not load and not output, load=load and not output, output=output,
                provenance=False, metadata_file=metadata,
                network=network, progress="plain", stream_logs=True,
                cache_from=[_cache_spec(c) for c in cache_from] or None,
                cache_to=_cache_spec(cache_to) if cache_to else None,
            )
            for line in stream:  # type: ignore[union-attr]
                log.write(redact(line))
                log.flush()
        except DockerException as exc:
            log.write(redact(f"\n# build failed: exit {exc.return_code}\n"))
            raise CommandError(["docker", "buildx", "build", "--platform", platform],
                               exc.return_code, log_tail(log_path)) from None
    try:
        digest = json.loads(metadata.read_text())["containerimage.digest"]
    except (OSError, ValueError, KeyError) as exc:  # a build that "worked" but says nothing of its image
        raise CommandError(["docker", "buildx", "build", "--platform", platform], 0,
                           f"buildx wrote no image digest to {metadata.name} ({type(exc).__name__}: {exc})") from None
    return BuildOutcome(digest=digest)


SOURCE_DATE_EPOCH = "0"
"""One time for every build: a layer's bytes then depend on its files, never on the commit or the day."""

REWRITE_TIMESTAMP_SINCE = (0, 13)
"""The first BuildKit whose image exporter takes rewrite-timestamp=true."""


def buildkit_version(builder: str | None) -> tuple[int, int] | None:
    """(major, minor) of the BuildKit behind BUILDER (the current one when None); None when its
    node doesn't say (a builder that isn't running)."""
    from python_on_whales.exceptions import DockerException

    try:
        nodes = docker_client().buildx.inspect(builder).nodes
    except DockerException as exc:
        raise CommandError(["docker", "buildx", "inspect", builder or ""], exc.return_code, str(exc)) from None
    return parse_buildkit_version(nodes[0].version if nodes else None)


def parse_buildkit_version(text: str | None) -> tuple[int, int] | None:
    """'v0.13.2' / 'v0.8+unknown' -> (0, 13) / (0, 8); None for anything else."""
    found = re.match(r"v?(\d+)\.(\d+)", text or "")
    return (int(found[1]), int(found[2])) if found else None


def rewrites_timestamps(version: tuple[int, int] | None) -> bool:
    return version is not None and version >= REWRITE_TIMESTAMP_SINCE


def _cache_spec(spec: str) -> dict[str, str]:
    """'type=registry,ref=r/x:y,mode=max' -> {'type': 'registry', 'ref': ..., 'mode': 'max'}."""
    return dict(part.split("=", 1) for part in spec.split(","))


def driver_of(builder: str | None) -> str:
    """The buildx driver of BUILDER (the current one when None): 'docker', 'docker-container'..."""
    from python_on_whales.exceptions import DockerException

    try:
        return str(docker_client().buildx.inspect(builder).driver)
    except DockerException as exc:
        raise CommandError(["docker", "buildx", "inspect", builder or ""], exc.return_code, str(exc)) from None
