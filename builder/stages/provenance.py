"""Build provenance: an SLSA v1 provenance predicate per published platform image, saying
how it was made (what from, by what, when); attached as a signed in-toto attestation."""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from builder.engine import cosign, oci
from builder.model.config import arch_of
from builder.model.records import BuildRecord, PlatformBuild, TagPlan
from builder.model.variants import ROOT, Variant, VariantSet

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
        download = tool.download_for(arch_of(build.platform))
        if download is not None and tool.name not in build.omitted_tools:
            dependencies.append({"uri": download.url, "name": tool.name, "digest": {"sha256": download.sha256}})
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


def workflow_run() -> str | None:
    """The GitHub Actions run this is part of, if any."""
    server = os.environ.get("GITHUB_SERVER_URL")
    if not server:
        return None
    return f"{server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"


def attach_all(variants: VariantSet, record: BuildRecord, plans: list[TagPlan], version: str | None,
               key: Path | None, lockfile: Path, folder: Path) -> int:
    """A signed SLSA provenance attestation on every platform image about to be published
    (KEY None: keyless); each document is also saved under FOLDER. Returns how many."""
    root_repository = oci.repository_of(record.root.reference)
    count = 0
    for plan in plans:
        variant = variants[plan.variant]
        for build in record.builds_of(plan.variant):
            if build.digest is None:
                continue
            if variant.parent == ROOT:
                parent = f"{root_repository}@{record.root.platforms.get(build.platform, '')}"
            else:
                parent_build = next(b for b in record.builds_of(variant.parent) if b.platform == build.platform)
                parent = f"{record.repository}@{parent_build.digest}"
            document = predicate(record, build, variant, parent, version, lockfile, workflow_run())
            cosign.attest(f"{record.repository}@{build.digest}", write(folder, build, document),
                          cosign.PROVENANCE_TYPE, key)
            count += 1
    return count
