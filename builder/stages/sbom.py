"""SBOMs (CycloneDX JSON) for every platform image, attached to it in the registry.

What is in the image is read from the image itself, for its own platform (arm64
too): Debian packages from dpkg's database, global npm packages from their
package.json; tools installed from archives come from the variant, with the
sha256 the build verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from builder.engine import cosign
from builder.engine.contents import Contents, read_contents
from builder.model.records import TagPlan
from builder.model.variants import Variant, VariantSet


def make_sbom(variant: Variant, platform: str, reference: str, contents: Contents) -> str:
    repository, digest = reference.split("@", 1)
    bom = Bom()
    image = Component(
        name=repository, version=digest, type=ComponentType.CONTAINER, bom_ref=reference,
        description=f"{variant.name} for {platform}",
    )
    bom.metadata.component = image
    for name, version, arch in contents.debian:
        purl = PackageURL("deb", "debian", name, version, {"arch": arch})
        bom.components.add(Component(name=name, version=version, type=ComponentType.LIBRARY,
                                     purl=purl, bom_ref=purl.to_string()))
    for name, version in contents.npm:
        namespace, _, short = name.rpartition("/")
        purl = PackageURL("npm", namespace or None, short, version)
        bom.components.add(Component(name=name, version=version, type=ComponentType.LIBRARY,
                                     purl=purl, bom_ref=purl.to_string()))
    for tool in variant.tools:
        if tool.source != "archive" or not tool.url or not tool.sha256:
            continue
        purl = PackageURL("generic", None, tool.name, tool.version, {"download_url": tool.url})
        bom.components.add(Component(
            name=tool.name, version=tool.version, type=ComponentType.APPLICATION, purl=purl,
            bom_ref=purl.to_string(), hashes=[HashType(alg=HashAlgorithm.SHA_256, content=tool.sha256)],
            external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(tool.url))],
        ))
    # the image contains every component listed: say so, so the graph is complete
    bom.register_dependency(image, list(bom.components))
    return JsonV1Dot6(bom).output_as_string(indent=2)


@dataclass(frozen=True)
class SbomOutcome:
    variant: str
    platform: str
    reference: str
    path: Path
    attached_as: str


def attach_all(variants: VariantSet, plans: list[TagPlan], key: Path | None, folder: Path,
               keyless: bool = False) -> list[SbomOutcome]:
    """An SBOM per platform image about to be published: saved under FOLDER and attached in
    the registry (a signed attestation with a key)."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for plan in plans:
        variant = variants[plan.variant]
        repository = plan.source.split("@", 1)[0]
        for platform, digest in sorted(plan.platforms.items()):
            reference = f"{repository}@{digest}"
            document = make_sbom(variant, platform, reference, read_contents(reference, platform))
            path = folder / f"{plan.variant}-{platform.split('/')[1]}.cdx.json"
            path.write_text(document)
            how = cosign.attach_sbom(reference, path, key, keyless)
            outcomes.append(SbomOutcome(plan.variant, platform, reference, path, how))
    return outcomes
