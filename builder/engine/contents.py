"""What an image holds, read from the image itself for its own platform: Debian
packages from dpkg's database and global npm packages from their package.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

from builder.engine import commands as tools
from builder.model import headjack
from builder.model.records import Weights

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


def _run_script(reference: str, platform: str, script: str, timeout: int) -> str:
    """SCRIPT's output, run as root by `sh` in a throwaway container of the image, on its own
    platform (labelled, so a stopped run's container can be found)."""
    return tools.run(
        ["docker", "run", "--rm", "--platform", platform, "--user", "0", "--entrypoint", "sh",
         "--label", f"{headjack.SBOM_RUN_LABEL}=1", reference, "-c", script], timeout=timeout,
    ).stdout


def read_contents(reference: str, platform: str) -> Contents:
    dpkg, _, npm_part = _run_script(reference, platform, _READ_SCRIPT, 600).partition("@@npm@@")
    npm = []
    for chunk in npm_part.split("@@next@@"):
        if chunk.strip():
            data = json.loads(chunk)
            npm.append((data["name"], data["version"]))
    return Contents(debian=parse_dpkg_status(dpkg), npm=sorted(npm))


# The heaviest Debian packages (Installed-Size, KiB), global npm packages and files,
# separated; each list largest first.
_WEIGHTS_SCRIPT = (
    "dpkg-query -W -f='${{Installed-Size}}\\t${{Package}}\\n' 2>/dev/null | sort -rn | head -{top}; "
    "echo '@@npm@@'; "
    "for d in /usr/local/lib/node_modules/* /usr/local/lib/node_modules/@*/*; do "
    "[ -d \"$d\" ] && [ -f \"$d/package.json\" ] && du -sb \"$d\"; done 2>/dev/null | sort -rn | head -{top}; "
    "echo '@@files@@'; "
    "find / -xdev -type f -size +{threshold}M -printf '%s\\t%p\\n' 2>/dev/null | sort -rn | head -{top}; true"
)


def _pairs(block: str, scale: int) -> list[tuple[str, int]]:
    """'SIZE<tab>NAME' lines -> (name, size * scale)."""
    found = []
    for line in block.strip().splitlines():
        size, _, name = line.partition("\t")
        if size.strip().isdigit():
            found.append((name.strip(), int(size) * scale))
    return found


def weights(reference: str, platform: str, *, threshold_mb: int = 20, top: int = 12) -> Weights:
    """Read from the image itself (a throwaway container of it, on its own platform)."""
    script = _WEIGHTS_SCRIPT.format(top=top, threshold=threshold_mb)
    debian, _, rest = _run_script(reference, platform, script, 900).partition("@@npm@@")
    npm, _, files = rest.partition("@@files@@")
    npm_pairs = [(name.removeprefix("/usr/local/lib/node_modules/"), size) for name, size in _pairs(npm, 1)]
    return Weights(debian=_pairs(debian, 1024), npm=npm_pairs, files=_pairs(files, 1))
