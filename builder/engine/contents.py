"""What an image holds, read from the image itself for its own platform: Debian
packages from dpkg's database, every npm package in the global trees (nested ones
too) from its package.json, the tool virtualenvs' distributions, the language
versions the version managers hold, and the large executables no package owns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from builder.engine import commands as tools
from builder.model import headjack
from builder.model.records import Weights
from builder.model.variants import OMITTED_TOOLS_FILE

# Prints, in sections: dpkg's status database; every package.json at the root of a package
# in the global npm trees (nested node_modules too), after its path; each tool virtualenv's
# distributions (Name and Version from their METADATA); the language versions the version
# managers hold; every executable over 10 MB that no Debian package owns, with its sha256;
# and the optional tools the build left out.
_READ_SCRIPT = r"""
cat /var/lib/dpkg/status
echo '@@npm@@'
# the global trees: where npm says (its prefix may be /usr), and the usual one
{ npm root -g 2>/dev/null; echo /usr/local/lib/node_modules; } | sort -u | while read -r r; do
  [ -d "$r" ] && find "$r" -regextype posix-extended \
    -regex '.*/node_modules/(@[^/]+/)?[^/@.][^/]*/package.json' 2>/dev/null; done | sort -u | while read -r f; do
  printf '@@package@@ %s\n' "$f"; cat "$f"; echo; done
echo '@@pypi@@'
for m in /opt/pypi/*/lib/python*/site-packages/*.dist-info/METADATA; do
  [ -f "$m" ] && printf '%s\t%s\n' "${m#/opt/pypi/}" "$(grep -m2 -E '^(Name|Version): ' "$m" | tr '\n' '\t')"
done
echo '@@languages@@'
for pair in "python:${PYENV_ROOT:-}" "node:${NODENV_ROOT:-}" "go:${GOENV_ROOT:-}"; do
  root=${pair#*:}; [ -n "$root" ] && [ -d "$root/versions" ] && for v in "$root"/versions/*; do
    [ -d "$v" ] && [ ! -L "$v" ] && printf '%s\t%s\n' "${pair%%:*}" "${v##*/}"; done
done
[ -n "${RUSTUP_HOME:-}" ] && for t in "$RUSTUP_HOME"/toolchains/*; do
  [ -d "$t" ] && printf 'rust\t%s\n' "${t##*/}"; done
echo '@@executables@@'
find / -xdev -type f -size +10M -perm /111 2>/dev/null | sort > /tmp/.hjk-big
cat /var/lib/dpkg/info/*.list 2>/dev/null | sed 's|^/lib/|/usr/lib/|; s|^/bin/|/usr/bin/|; s|^/sbin/|/usr/sbin/|' \
  | sort -u > /tmp/.hjk-owned
comm -23 /tmp/.hjk-big /tmp/.hjk-owned | while read -r f; do
  printf '%s\t%s\n' "$(stat -c %s "$f")" "$(sha256sum "$f")"; done
rm -f /tmp/.hjk-big /tmp/.hjk-owned
echo '@@omitted@@'
cat @OMITTED_TOOLS_FILE@ 2>/dev/null
true
""".replace("@OMITTED_TOOLS_FILE@", OMITTED_TOOLS_FILE)


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    path: str
    """The package's folder in the image (/usr/local/lib/node_modules/.../NAME)."""
    requires: tuple[str, ...] = ()
    """Names it depends on (dependencies and optional ones), resolved Node's way by `npm_edges`."""


@dataclass(frozen=True)
class Executable:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Contents:
    debian: list[tuple[str, str, str]]
    """(package, version, architecture) of every installed Debian package."""
    npm: list[NpmPackage] = field(default_factory=list)
    pypi: list[tuple[str, str, str]] = field(default_factory=list)
    """(virtualenv, distribution, version) in each tool virtualenv under /opt/pypi."""
    languages: list[tuple[str, str]] = field(default_factory=list)
    """(language, version) installed by a version manager (python, node, go, rust)."""
    executables: list[Executable] = field(default_factory=list)
    """Executables over 10 MB that no Debian package owns."""
    omitted: list[str] = field(default_factory=list)
    """Optional tools the build left out (its omitted-tools file)."""


def npm_edges(packages: list[NpmPackage]) -> dict[str, list[str]]:
    """name@version -> the name@version of each package it requires, found as Node does:
    in its own node_modules, then in each enclosing node_modules folder."""
    at_path = {p.path: p for p in packages}
    edges: dict[str, list[str]] = {}
    for package in packages:
        found = []
        for wanted in package.requires:
            folder = package.path
            while "/node_modules/" in folder + "/":
                candidate = at_path.get(f"{folder}/node_modules/{wanted}")
                if candidate:
                    found.append(f"{candidate.name}@{candidate.version}")
                    break
                folder = folder.rsplit("/node_modules/", 1)[0]
        known = edges.setdefault(f"{package.name}@{package.version}", [])
        known += [f for f in found if f not in known]
    return edges


def _npm_packages(block: str) -> list[NpmPackage]:
    packages = []
    for chunk in block.split("@@package@@ ")[1:]:
        path, _, text = chunk.partition("\n")
        try:
            data = json.loads(text)
        except ValueError:
            continue  # not a package manifest (a fixture file named package.json)
        if not isinstance(data, dict) or not data.get("name") or not data.get("version"):
            continue
        requires = [*(data.get("dependencies") or {}), *(data.get("optionalDependencies") or {})]
        packages.append(NpmPackage(str(data["name"]), str(data["version"]), path.removesuffix("/package.json"),
                                   tuple(dict.fromkeys(requires))))
    return packages


def _pypi(block: str) -> list[tuple[str, str, str]]:
    found = []
    for line in block.strip().splitlines():
        where, _, fields = line.partition("\t")
        values = dict(f.split(": ", 1) for f in fields.split("\t") if ": " in f)
        if "Name" in values and "Version" in values:
            found.append((where.split("/", 1)[0], values["Name"], values["Version"]))
    return sorted(found)


def _executables(block: str) -> list[Executable]:
    found = []
    for line in block.strip().splitlines():
        size, _, rest = line.partition("\t")
        digest, _, path = rest.partition("  ")
        if size.isdigit() and len(digest) == 64:
            found.append(Executable(path, int(size), digest))
    return found


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
    return parse_contents(_run_script(reference, platform, _READ_SCRIPT, 1800))


def parse_contents(output: str) -> Contents:
    """The read script's output, section by section."""
    dpkg, _, rest = output.partition("@@npm@@")
    npm, _, rest = rest.partition("@@pypi@@")
    pypi, _, rest = rest.partition("@@languages@@")
    languages, _, rest = rest.partition("@@executables@@")
    executables, _, omitted = rest.partition("@@omitted@@")
    return Contents(
        debian=parse_dpkg_status(dpkg), npm=_npm_packages(npm), pypi=_pypi(pypi),
        languages=sorted((kind, version) for kind, _, version in
                         (line.partition("\t") for line in languages.strip().splitlines()) if version),
        executables=_executables(executables), omitted=sorted(set(omitted.split())),
    )


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
