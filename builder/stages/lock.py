"""The lockfile: every external input that can move, written down so builds can't drift.

- root: for an ordinary reference, its index digest and per-platform digests;
  for a bootstrapped root, the inputs that make it (suite, mirror, packages) and,
  since the same inputs and archive give the same bytes, each platform's digest and
  the Debian packages inside (so a moved digest names the package that moved it);
- tools: every tool of every variant with its source, exact version and, for
  archives, URL and sha256.

`lock` resolves and writes it (atomically); `lock --check` compares it with the
variant files and the registry; builds refuse to start when it is stale.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from builder.engine import oci, releases
from builder.model import files as project_files
from builder.model.config import Settings
from builder.model.errors import FactoryError
from builder.model.graph import RootPins, package_moves
from builder.model.lockfile import LOCK_FILE, BootstrapInputs, Lock, load_lock
from builder.model.root_tree import root_tree, tree_digest
from builder.model.tools import CLIENTS, Tool, client_tools
from builder.model.variants import VariantSet

HEADER = "# Written by `hjk-images lock`: every input that can move. Review its diffs; don't edit it by hand.\n"


def lock_path(settings: Settings) -> Path:
    """Beside the variants folder: a variant set and its lock travel together."""
    return settings.variants_dir.parent / LOCK_FILE


def _tool_entry(tool: Tool) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": tool.source, "version": tool.version}
    if tool.package:
        entry["package"] = tool.package
    if tool.url:
        entry["url"] = tool.url
    if tool.sha256:
        entry["sha256"] = tool.sha256
    if tool.archives:
        entry["archives"] = {arch: {"url": d.url, "sha256": d.sha256} for arch, d in sorted(tool.archives.items())}
    return entry


def declared_tools(variants: VariantSet, settings: Settings | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """What the variant files say: variant -> its own tools -> their pins; the factory's
    clients under CLIENTS."""
    declared = {v.name: {t.name: _tool_entry(t) for t in v.own_tools} for v in variants if v.own_tools}
    clients = client_tools(settings.config) if settings else ()
    if clients:
        declared[CLIENTS] = {t.name: _tool_entry(t) for t in clients}
    return declared


def bootstrap_inputs(settings: Settings) -> BootstrapInputs:
    """What a bootstrapped root is made from, as the lock records it."""
    boot = settings.config.root.bootstrap
    return BootstrapInputs(suite=boot.suite, mirror=boot.mirror, packages=sorted(boot.packages),
                           tree=tree_digest(root_tree(settings.templates_dir)))


def _bootstrap_inputs(settings: Settings) -> dict[str, Any]:
    return bootstrap_inputs(settings).model_dump()


def _root_entry(
    settings: Settings, platforms: set[str], resolve: bool, pins: RootPins | None = None,
) -> dict[str, Any]:
    root = settings.config.root
    if root.source == "bootstrap":
        entry: dict[str, Any] = {"bootstrap": _bootstrap_inputs(settings)}
        if pins is not None:
            entry["images"] = dict(sorted(pins.images.items()))
            entry["packages"] = {p: dict(sorted(pk.items())) for p, pk in sorted(pins.packages.items())}
        return entry
    if root.reference is None:
        raise FactoryError("root.source is 'reference' but root.reference is not set")
    if not resolve:
        return {"reference": root.reference}
    info = oci.inspect(root.reference)
    missing = sorted(platforms - set(info.platforms))
    if missing:
        raise FactoryError(f"root image {root.reference} has no image for {', '.join(missing)}, which variants need")
    return {"reference": root.reference, "index": info.digest,
            "platforms": {p: info.platforms[p] for p in sorted(platforms)}}


def _verify_tool_exists(variant: str, name: str, entry: dict[str, Any]) -> None:
    """npm and PyPI releases must exist (asked over HTTP, as `bump` asks); archives are
    checked by sha256 at build time."""
    if entry["source"] not in ("npm", "pypi"):
        return
    package = entry.get("package", name)
    where = "the npm registry" if entry["source"] == "npm" else "PyPI"
    try:
        found = releases.release_exists(entry["source"], package, entry["version"])
    except releases.SourceError as exc:
        raise FactoryError(f"tool {variant}/{name}: can't check that {package} {entry['version']} exists: {exc}") \
            from None
    if not found:
        raise FactoryError(f"tool {variant}/{name}: {package} {entry['version']} does not exist on {where}")


def load(settings: Settings) -> Lock | None:
    """The lock beside the variants, read and validated once; None when there is none (a
    fork that hasn't locked yet: its builds aren't gated on it)."""
    path = lock_path(settings)
    return load_lock(path) if path.is_file() else None


def root_pins(settings: Settings, locked: Lock | None) -> RootPins | None:
    """The lock's digests of a bootstrapped root, while its inputs are the factory's."""
    if settings.config.root.source != "bootstrap" or locked is None:
        return None
    return locked.root.pins_for(bootstrap_inputs(settings))


def resolve(
    settings: Settings, variants: VariantSet, verify_tools: bool = True, pins: RootPins | None = None,
    *, online: bool = True,
) -> dict[str, Any]:
    """The lock document the variant files and (ONLINE) the registries call for now."""
    platforms = {p for v in variants for p in v.platforms}
    tools_now = declared_tools(variants, settings)
    if verify_tools:
        for variant, entries in tools_now.items():
            for name, entry in entries.items():
                _verify_tool_exists(variant, name, entry)
    return {"schema": 1, "root": _root_entry(settings, platforms, resolve=online, pins=pins), "tools": tools_now}


def dump(data: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=200)


def read(path: Path) -> dict[str, Any]:
    """The lock at PATH as its YAML document (validated on the way)."""
    return load_lock(path).document()


def write(path: Path, data: dict[str, Any]) -> None:
    """Atomically, keeping its mode: a crash mid-write leaves the old file intact."""
    project_files.write_atomically(path, dump(data))


PINNED_KEYS = ("schema", "root", "tools")
"""What `--check` compares; `debian` is a record of what builds installed, for spotting drift."""


def pinned(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in PINNED_KEYS if k in data}


def differences(locked: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """A readable unified diff between the pinned parts of two lock documents (empty when equal)."""
    locked, current = pinned(locked), pinned(current)
    if locked == current:
        return []
    return list(difflib.unified_diff(
        dump(locked).splitlines(), dump(current).splitlines(), "lockfile", "variant files and registry", lineterm="",
    ))


def stale_tools(settings: Settings, variants: VariantSet, locked: Lock | None) -> list[str]:
    """Offline: tools whose pins in the variant files differ from the lock (for build gating)."""
    if locked is None:
        return []
    document = locked.document()
    locked_tools: dict[str, dict[str, Any]] = document["tools"]
    problems = []
    for variant, entries in declared_tools(variants, settings).items():
        for name, entry in entries.items():
            if locked_tools.get(variant, {}).get(name) != entry:
                problems.append(f"{variant}/{name}")
    root_now = _root_entry(settings, set(), resolve=False)
    root_locked: dict[str, Any] = document["root"]
    if ("bootstrap" in root_now and root_locked.get("bootstrap") != root_now["bootstrap"]) or (
        "reference" in root_now and root_locked.get("reference") != root_now["reference"]
    ):
        problems.append("root")
    return problems


def _describe_root(entry: dict[str, Any]) -> str:
    if not entry:
        return "(none)"
    if "bootstrap" in entry:
        boot = entry["bootstrap"]
        tree = f", factory files {boot['tree'][:12]}" if boot.get("tree") else ""
        return f"bootstrap {boot['suite']} from {boot['mirror']} with [{', '.join(boot['packages'])}]{tree}"
    return f"{entry['reference']}@{entry.get('index', '?')}"


def debian_drift(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Debian packages whose installed version changed between two records, per variant and platform."""
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, {}), after.get(key, {})
        for package in sorted(set(old) | set(new)):
            if old.get(package) != new.get(package):
                lines.append(f"debian {key} {package}: {old.get(package, '(none)')} -> {new.get(package, '(none)')}")
    return lines


def _root_moves(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    if old == new:
        return []
    if "bootstrap" not in old or old.get("bootstrap") != new.get("bootstrap"):
        return [f"root: {_describe_root(old)} -> {_describe_root(new)}"]
    lines = []
    before, after = old.get("images") or {}, new.get("images") or {}
    for platform in sorted(set(before) | set(after)):
        if before.get(platform) != after.get(platform):
            changed = package_moves((old.get("packages") or {}).get(platform, {}),
                                    (new.get("packages") or {}).get(platform, {}))
            cause = f" ({changed})" if changed else ""
            lines.append(f"root {platform}: {before.get(platform, '(none)')} -> {after.get(platform, '(none)')}{cause}")
    return lines


def moves(locked: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What moved between two lock documents, from what to what, one line each (a root's
    digest with the Debian packages that moved it)."""
    lines = _root_moves(locked.get("root", {}), current.get("root", {}))
    old_tools, new_tools = locked.get("tools", {}), current.get("tools", {})
    for variant in sorted(set(old_tools) | set(new_tools)):
        before, after = old_tools.get(variant, {}), new_tools.get(variant, {})
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                old = before.get(name, {}).get("version", "(none)")
                new = after.get(name, {}).get("version", "(none)")
                lines.append(f"tool {variant}/{name}: {old} -> {new}")
    return lines


def check_before_build(settings: Settings, variants: VariantSet, locked: Lock | None) -> None:
    """Refuse to build from variant files the lock doesn't match."""
    stale = stale_tools(settings, variants, locked)
    if stale:
        raise FactoryError(
            f"{lock_path(settings)} is stale for {', '.join(stale)}: run `hjk-images lock` and commit it"
        )


def record_debian(path: Path, installed: dict[str, dict[str, str]]) -> list[str]:
    """Keep what each image installed in the lock; return what changed since last time."""
    with project_files.editing(path):
        locked = read(path)
        drift = debian_drift(locked.get("debian", {}), installed)
        write(path, {**locked, "debian": installed})
    return drift


@dataclass(frozen=True)
class Staleness:
    diff: list[str]
    """Unified diff of the lock file against what the variant files say now."""
    moves: list[str]
    """Each pin that moved, from what to what."""


def staleness(settings: Settings, variants: VariantSet, locked: Lock, *, online: bool = True) -> Staleness:
    """How the lock differs from the variant files and, ONLINE, from the digest an ordinary
    root reference has now (a bootstrapped root's pins are compared by the caller, with
    the registry that holds them). Offline, a reference root's pin stands while its
    reference does."""
    document = locked.document()
    current = resolve(settings, variants, verify_tools=False, pins=root_pins(settings, locked), online=online)
    reference = current["root"].get("reference")
    if not online and reference is not None and reference == document["root"].get("reference"):
        current["root"] = document["root"]
    return Staleness(differences(document, current), moves(pinned(document), current))


def update(
    settings: Settings, variants: VariantSet, only: str | None, pins: RootPins | None = None,
    *, verify_tools: bool = True,
) -> list[str]:
    """Re-resolve the pins (ONLY: just `root` or one tool), write the lock; return what moved.
    PINS: a bootstrapped root's digests, made by the caller. VERIFY_TOOLS: ask npm and PyPI
    that each release exists (off when the caller just did)."""
    path = lock_path(settings)
    with project_files.editing(path):
        return _update(path, settings, variants, only, pins, verify_tools)


def _update(
    path: Path, settings: Settings, variants: VariantSet, only: str | None, pins: RootPins | None,
    verify_tools: bool,
) -> list[str]:
    current = resolve(settings, variants, verify_tools=verify_tools, pins=pins)
    previous = read(path) if path.is_file() else {"root": {}, "tools": {}}
    if "debian" in previous:
        current["debian"] = previous["debian"]  # the record of installed packages stays
    if only:
        merged = {**previous, "schema": 1}
        if only == "root":
            merged["root"] = current["root"]
        else:
            merged["tools"] = {
                v: {n: (current["tools"].get(v, {}).get(n) if n == only else e) for n, e in entries.items()}
                for v, entries in previous.get("tools", {}).items()
            }
        current = merged
    moved = moves(previous, current)
    write(path, current)
    return moved
