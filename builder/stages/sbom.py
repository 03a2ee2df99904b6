"""SBOMs (CycloneDX JSON) for every platform image, attached to it in the registry.

What is in the image is read from the image itself, for its own platform (arm64
too): Debian packages from dpkg's database, every npm package of the global trees
(nested ones too, with the dependency edges between them), the distributions in the
tool virtualenvs, the language versions the version managers installed, and every
executable over 10 MB no Debian package owns (with its sha256). Tools installed from
archives come from the variant, with the sha256 the build verified. Each document is
validated against the CycloneDX 1.6 schema before it is attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from builder.engine import cosign
from builder.engine.contents import Contents, npm_edges, read_contents
from builder.model.config import arch_of
from builder.model.errors import FactoryError
from builder.model.records import TagPlan
from builder.model.variants import LANGUAGE_MANAGERS, Variant, VariantSet


def _component(purl: PackageURL, name: str, version: str, kind: ComponentType = ComponentType.LIBRARY,
               **extra: Any) -> Component:
    return Component(name=name, version=version, type=kind, purl=purl, bom_ref=purl.to_string(), **extra)


def make_sbom(variant: Variant, platform: str, reference: str, contents: Contents) -> str:
    """One CycloneDX 1.6 document for one platform image, validated against the schema."""
    repository, digest = reference.split("@", 1)
    bom = Bom()
    image = Component(
        name=repository, version=digest, type=ComponentType.CONTAINER, bom_ref=reference,
        description=f"{variant.name} for {platform}",
    )
    bom.metadata.component = image
    for name, version, arch in contents.debian:
        bom.components.add(_component(PackageURL("deb", "debian", name, version, {"arch": arch}), name, version))
    npm: dict[str, Component] = {}
    for package in contents.npm:  # one component per name@version, wherever it is installed
        key = f"{package.name}@{package.version}"
        if key not in npm:
            namespace, _, short = package.name.rpartition("/")
            npm[key] = _component(PackageURL("npm", namespace or None, short, package.version),
                                  package.name, package.version)
            bom.components.add(npm[key])
    for venv, name, version in contents.pypi:
        purl = PackageURL("pypi", None, name.lower(), version, None, f"opt/pypi/{venv}")
        bom.components.add(_component(purl, name, version))
    for tool in variant.tools:
        if (download := tool.download_for(arch_of(platform))) is None or tool.name in contents.omitted:
            continue
        purl = PackageURL("generic", None, tool.name, tool.version, {"download_url": download.url})
        bom.components.add(_component(
            purl, tool.name, tool.version, ComponentType.APPLICATION,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=download.sha256)],
            external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                                   url=XsUri(download.url))],
        ))
    for language, version in contents.languages:
        purl = PackageURL("generic", None, language, version, {"installed_by": LANGUAGE_MANAGERS[language]})
        bom.components.add(_component(purl, language, version, ComponentType.FRAMEWORK))
    for executable in contents.executables:
        bom.components.add(Component(
            name=executable.path, type=ComponentType.FILE, bom_ref=f"file:{executable.path}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=executable.sha256)],
            description=f"executable, {executable.size} bytes, not from a Debian package",
        ))
    # the image holds every component; npm packages also depend on each other
    bom.register_dependency(image, list(bom.components))
    for key, requires in npm_edges(contents.npm).items():
        bom.register_dependency(npm[key], [npm[r] for r in requires if r in npm])
    document = JsonV1Dot6(bom).output_as_string(indent=2)
    # imported here: jsonschema's format checkers take seconds to load, which every other
    # command (and each CLI call of the test suite) would pay
    from cyclonedx.validation.json import JsonStrictValidator

    problem = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    if problem is not None:
        raise FactoryError(f"the SBOM of {reference} does not validate against CycloneDX 1.6: {problem}")
    return document


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
