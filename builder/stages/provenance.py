"""Build provenance: an SLSA v1 provenance predicate per published platform image, saying
how it was made (what from, by what, when); attached as a signed in-toto attestation."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from builder.model.records import BuildRecord, PlatformBuild
from builder.model.variants import Variant

BUILD_TYPE = "https://github.com/gilmanlab/headjack-images/build/v1"


def builder_id(workflow_run: str | None) -> str:
    """The CLI and its version, and the workflow run that ran it where there is one."""
    try:
        cli = f"hjk-images@{version('headjack-images')}"
    except PackageNotFoundError:
        cli = "hjk-images@unknown"
    return f"{workflow_run}#{cli}" if workflow_run else cli


def predicate(record: BuildRecord, build: PlatformBuild, variant: Variant, parent_reference: str,
              release_version: str | None, lockfile: Path | None, workflow_run: str | None) -> dict[str, object]:
    """The provenance of one platform image of the build record."""
    dependencies: list[dict[str, object]] = [
        {"uri": parent_reference.split("@", 1)[0], "digest": {"sha256": parent_reference.split(":")[-1]},
         "name": "parent"},
    ]
    if build.context_digest:
        dependencies.append({"name": "rendered build context", "digest": {"sha256": build.context_digest}})
    if lockfile is not None and lockfile.is_file():
        dependencies.append({"uri": lockfile.name, "name": "lockfile",
                             "digest": {"sha256": hashlib.sha256(lockfile.read_bytes()).hexdigest()}})
    for tool in variant.tools:
        if tool.source == "archive" and tool.url and tool.sha256:
            dependencies.append({"uri": tool.url, "name": tool.name, "digest": {"sha256": tool.sha256}})
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"variant": build.variant, "platform": build.platform,
                                   "version": release_version, "commit": record.revision},
            "internalParameters": {"identity": build.identity, "repository": record.repository},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": builder_id(workflow_run)},
            "metadata": {"invocationId": build.identity, "startedOn": build.started_at,
                         "finishedOn": build.finished_at},
        },
    }


def write(folder: Path, build: PlatformBuild, document: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{build.variant}-{build.platform.split('/')[1]}.provenance.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path
