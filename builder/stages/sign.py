"""Sign: every published index (and, recursively, its platform images) by digest, with cosign;
and verify all a published image promises: its signature, its SBOM, its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.engine import cosign, oci
from builder.model.errors import FactoryError


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


@dataclass(frozen=True)
class Verdict:
    what: str
    """signature, sbom or provenance."""
    reference: str
    ok: bool
    detail: str


def _subject_digests(statement: dict[str, object]) -> set[str]:
    subjects = statement.get("subject")
    return {f"sha256:{s['digest']['sha256']}" for s in subjects if isinstance(s, dict)} \
        if isinstance(subjects, list) else set()


def _attested(reference: str, digest: str, what: str, predicate_type: str, key: Path | None, identity: str,
              issuer: str, commit: str | None) -> Verdict:
    try:
        statements = cosign.attestations(reference, predicate_type, key, identity, issuer)
    except FactoryError as exc:
        return Verdict(what, reference, False, str(exc))
    mine = [s for s in statements if digest in _subject_digests(s)]
    if not mine:
        others = sorted(set().union(*(_subject_digests(s) for s in statements)))
        return Verdict(what, reference, False,
                       f"the {what} attestation on {reference} is about {', '.join(others) or 'nothing'}, "
                       f"not {digest}: the subjects differ")
    if commit is None:
        return Verdict(what, reference, True, f"{len(mine)} verified")
    predicate = mine[-1].get("predicate")
    found = predicate.get("buildDefinition", {}).get("externalParameters", {}).get("commit") \
        if isinstance(predicate, dict) else None
    if found != commit:
        return Verdict(what, reference, False,
                       f"the provenance of {reference} names commit {found}, the release record {commit}")
    return Verdict(what, reference, True, f"built from commit {found}")


def verify_all(reference: str, key: Path | None, identity: str, issuer: str,
               commit: str | None = None) -> list[Verdict]:
    """The signature of REFERENCE, and on each of its platform images an SBOM attestation
    and a provenance attestation about that very digest (and, given COMMIT, made from it)."""
    info = oci.inspect(reference)
    repository = oci.repository_of(reference)
    pinned = f"{repository}@{info.digest}"
    try:
        verdicts = [Verdict("signature", pinned, True, verify(pinned, key, identity, issuer).splitlines()[-1][:200])]
    except FactoryError as exc:
        verdicts = [Verdict("signature", pinned, False, str(exc))]
    for digest in sorted((info.platforms or {"": info.digest}).values()):
        image = f"{repository}@{digest}"
        verdicts.append(_attested(image, digest, "sbom", cosign.SBOM_TYPE, key, identity, issuer, None))
        verdicts.append(_attested(image, digest, "provenance", cosign.PROVENANCE_TYPE, key, identity, issuer,
                                  commit))
    return verdicts
