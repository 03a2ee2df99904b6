"""End-to-end tier: the real variants, released against a registry of their own.

The registry's storage sits in the shared cache, so on the same machine a later
run reuses every image whose inputs did not change (identity-keyed), while a
fresh machine builds everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engine.registry import EmbeddedRegistry
from builder.engine.state import STATE_ENV
from builder.model.records import BuildRecord, ReleaseRecord, TestResults, load
from tests.conftest import forget_local_images, free_port, hjk


@dataclass(frozen=True)
class Release:
    """The release's output and records, read when it finished: later tests run
    commands of their own that write the state folder's records again."""

    registry: EmbeddedRegistry
    stdout: str
    stderr: str
    build: BuildRecord
    results: TestResults
    release: ReleaseRecord


@pytest.fixture(scope="session")
def e2e_registry(docker_engine: None) -> Iterator[EmbeddedRegistry]:
    storage = Path(os.environ[STATE_ENV]) / "cache" / "e2e-registry"
    reg = EmbeddedRegistry(free_port(), storage)
    reg.up()
    yield reg
    reg.down()
    forget_local_images(reg.address)


@pytest.fixture(scope="session")
def released(e2e_registry: EmbeddedRegistry) -> Release:
    proc = hjk("release", "--registry", e2e_registry.address)
    records = Path(os.environ[STATE_ENV]) / "records"
    return Release(e2e_registry, proc.stdout, proc.stderr,
                   load(records / "build.json", BuildRecord), load(records / "test.json", TestResults),
                   load(records / "release.json", ReleaseRecord))
