"""Sign: every published index (and, recursively, its platform images) by digest, with cosign."""

from __future__ import annotations

from pathlib import Path

from builder.engine import cosign
from builder.model.records import ReleaseRecord


def sign_release(release: ReleaseRecord, key: Path | None) -> list[str]:
    """Sign every index the release published; returns the signed references."""
    signed = []
    for variant in release.variants:
        reference = f"{variant.repository}@{variant.index_digest}"
        cosign.sign(reference, key)
        signed.append(reference)
    return signed


def verify(reference: str, key: Path | None) -> str:
    """cosign's summary of REFERENCE's signature; raises, naming the image, when it doesn't verify."""
    return cosign.verify(reference, key)
