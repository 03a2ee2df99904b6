"""What an image holds, read from the image itself for its own platform: Debian
packages from dpkg's database and global npm packages from their package.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

from builder.engine import commands as tools
from builder.model import headjack

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
