"""Sign: every published index (and, recursively, its platform images) by digest, with cosign."""

from __future__ import annotations

from pathlib import Path

from builder.engine import cosign


def sign_indexes(references: list[str], key: Path | None) -> list[str]:
    """Sign each index (by digest) and, recursively, its platform images; returns them."""
    for reference in references:
        cosign.sign(reference, key)
    return references


def verify(reference: str, key: Path | None, identity: str, issuer: str) -> str:
    """cosign's summary of REFERENCE's signature; raises, naming the image, when it doesn't verify."""
    return cosign.verify(reference, key, identity, issuer)


def default_identity(source_url: str) -> str:
    """Keyless: signatures made by the release workflows of the factory's own repository."""
    return cosign.workflow_identity(source_url)
