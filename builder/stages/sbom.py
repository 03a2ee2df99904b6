"""SBOMs (CycloneDX JSON) for every platform image, attached to it in the registry.

What is in the image is read from the image itself, for its own platform (arm64
too): Debian packages from dpkg's database, global npm packages from their
package.json; tools installed from archives come from the variant, with the
sha256 the build verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from builder.engine import commands as tools
from builder.engine import cosign as sign
from builder.model import headjack
from builder.model.variants import Variant

# Prints dpkg's status database, then every global npm package.json, separated.
_READ_SCRIPT = (
    "cat /var/lib/dpkg/status; echo '@@npm@@'; "
    "for f in /usr/local/lib/node_modules/*/package.json /usr/local/lib/node_modules/@*/*/package.json; do "
    "[ -f \"$f\" ] && { cat \"$f\"; echo '@@next@@'; }; done; true"
)


@dataclass(frozen=True)
class Contents:
    debian: list[tuple[str, str, str]]
    """(package, version, architecture) of every installed Debian package."""
    npm: list[tuple[str, str]]


def parse_dpkg_status(text: str) -> list[tuple[str, str, str]]:
    packages = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(" "):
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages.append((fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")))
    return sorted(packages)


def read_contents(reference: str, platform: str) -> Contents:
    result = tools.run(
        ["docker", "run", "--rm", "--platform", platform, "--user", "0", "--entrypoint", "sh",
         "--label", f"{headjack.SBOM_RUN_LABEL}=1", reference, "-c", _READ_SCRIPT],
        timeout=600,
    )
    dpkg, _, npm_part = result.stdout.partition("@@npm@@")
    npm = []
    for chunk in npm_part.split("@@next@@"):
        if chunk.strip():
            data = json.loads(chunk)
            npm.append((data["name"], data["version"]))
    return Contents(debian=parse_dpkg_status(dpkg), npm=sorted(npm))


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


def attach(reference: str, sbom_file: Path, key: Path | None) -> str:
    """Attach SBOM_FILE to REFERENCE: a signed attestation with a key, else a plain OCI artifact."""
    insecure = sign.insecure_flags(reference)
    if key is not None:
        tools.run(["cosign", "attest", "--yes", "--key", str(key), "--tlog-upload=false", "--type", "cyclonedx",
                   "--predicate", str(sbom_file), *insecure, reference], env=sign.key_env(), timeout=300)
        return "attestation"
    tools.run(["cosign", "attach", "sbom", "--sbom", str(sbom_file), "--type", "cyclonedx", *insecure, reference],
              timeout=300)
    return "artifact"
