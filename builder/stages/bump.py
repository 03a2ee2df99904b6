"""Move every pin forward to the newest release its source offers that the tool's policy
allows, and write it into the variant files with their comments and layout kept.

Per tool: `update` (latest, minor, patch, pinned) bounds how far it may move, and
`min_age` how young a release may be (a release younger than that waits, and the
table says until when). A deprecated or yanked release is never chosen; a pin that
points at one is a problem. Nothing here builds: the caller re-locks, and CI builds
and tests what the pull request changes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

from packaging.version import InvalidVersion, Version
from ruamel.yaml import YAML

from builder.engine import releases
from builder.model import files as project_files
from builder.model.config import FeatureConfig, Settings, parse_duration
from builder.model.errors import FactoryError
from builder.model.records import Bump
from builder.model.tools import CLIENTS, Tool
from builder.model.variants import VariantSet


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _within(policy: str, current: Version, candidate: Version) -> bool:
    if policy == "minor":
        return candidate.major == current.major
    if policy == "patch":
        return (candidate.major, candidate.minor) == (current.major, current.minor)
    return True


def choose(
    tool: Tool, offer: releases.Offer, now: dt.datetime, min_age: dt.timedelta, variant: str = "",
) -> Bump:
    """The release TOOL moves to under its policy, from what OFFER holds (pure: no network)."""
    base = Bump(variant=variant, tool=tool.name, source=tool.source, current=tool.version, status="current",
                notes=offer.notes)
    if tool.update == "pinned":
        return base.model_copy(update={"status": "pinned", "detail": "update: pinned (never bumped)"})
    current = _version(tool.version)
    if current is None:
        return base.model_copy(update={"status": "error", "detail": f"version {tool.version!r} can't be ordered"})
    by_version = {r.version: r for r in offer.releases}
    problem = by_version.get(tool.version)
    ceiling = _version(offer.latest) if offer.latest else None
    candidates = sorted(
        ((v, r) for r in offer.releases if (v := _version(r.version)) is not None
         and not v.is_prerelease and not v.is_devrelease and not r.withdrawn
         and (ceiling is None or v <= ceiling) and _within(tool.update, current, v)),
        key=lambda pair: pair[0], reverse=True,
    )
    waiting = ""
    chosen = None
    # Debian's suite is a distribution's own vetting and carries no upload times; anywhere
    # else a release whose publish time is unknown (a mirror that drops it) counts as too young.
    undated_ok = tool.source == "apt" or min_age <= dt.timedelta(0)
    for version, release in candidates:
        if release.published is None and not undated_ok:
            if not waiting and version > current:
                waiting = f"{release.version} waits: its publish time is unknown, so min_age can't be met"
            continue
        if release.published is not None and now - release.published < min_age:
            if not waiting and version > current:
                ready = (release.published + min_age).strftime("%Y-%m-%d %H:%M UTC")
                waiting = f"{release.version} waits until {ready} (min_age)"
            continue
        chosen = (version, release)
        break
    detail = waiting
    if problem is not None and problem.withdrawn:
        detail = f"the pinned {tool.version} is withdrawn ({problem.withdrawn})" + (f"; {waiting}" if waiting else "")
    if chosen is None or chosen[0] <= current:
        status = "problem" if problem is not None and problem.withdrawn else ("waiting" if waiting else "current")
        return base.model_copy(update={"status": status, "detail": detail})
    published = chosen[1].published
    released = published.strftime("%Y-%m-%d") if published else ""
    return base.model_copy(update={"status": "bump", "target": chosen[1].version, "detail": detail,
                                   "released": released})


def _debian_upstream(version: str) -> str:
    """'1:2.47.3-0+deb13u1' -> '2.47.3', '20.19.2+dfsg-1' -> '20.19.2': the version the
    build checks (epoch, Debian revision and repack suffix aside, as verify-apt-versions)."""
    upstream = version.split(":", 1)[-1]
    upstream = upstream.rsplit("-", 1)[0] if "-" in upstream else upstream
    return re.split(r"[+~]", upstream, maxsplit=1)[0]


def _offer(tool: Tool, settings: Settings) -> releases.Offer:
    if tool.source == "npm":
        return releases.npm(tool.package_name)
    if tool.source == "pypi":
        return releases.pypi(tool.package_name)
    if tool.source == "apt":
        boot = settings.config.root.bootstrap
        offer = releases.debian(boot.mirror, boot.suite, "amd64", tool.package_name)
        upstream = _debian_upstream(offer.latest or "")
        return releases.Offer([releases.Release(upstream, None)], upstream, offer.notes)
    feed = tool.feed or ""
    kind, _, name = feed.partition(":")
    return releases.npm(name) if kind == "npm" else releases.github(name)


def _resolve_archive(tool: Tool, bump: Bump) -> Bump:
    """A new archive release's URL and the sha256 the build will check."""
    assert bump.target is not None and tool.feed is not None
    if tool.archives:  # one per architecture: each URL names the release
        archives = {arch: d.url.replace(tool.version, bump.target) for arch, d in sorted(tool.archives.items())}
        return bump.model_copy(update={"archives": {arch: (url, releases.sha256_of(url))
                                                    for arch, url in archives.items()}})
    assert tool.url is not None
    kind, _, name = tool.feed.partition(":")
    url = releases.npm_tarball(name, bump.target) if kind == "npm" else tool.url.replace(tool.version, bump.target)
    return bump.model_copy(update={"url": url, "sha256": releases.sha256_of(url)})


def check_tool(tool: Tool, variant: str, settings: Settings, now: dt.datetime) -> Bump:
    """Ask TOOL's source and choose; a source's refusal becomes the tool's own error line."""
    if tool.source == "archive" and not tool.feed:
        return Bump(variant=variant, tool=tool.name, source=tool.source, current=tool.version, status="unchecked",
                    detail="no release feed declared (`feed:`): pin left")
    min_age = parse_duration(tool.min_age or settings.config.bump.min_age)
    try:
        bump = choose(tool, _offer(tool, settings), now, min_age, variant)
        return _resolve_archive(tool, bump) if bump.moves and tool.source == "archive" else bump
    except releases.SourceError as exc:
        if tool.source == "archive":  # a feed that can't be asked leaves the pin, said so
            return Bump(variant=variant, tool=tool.name, source=tool.source, current=tool.version,
                        status="unchecked", detail=f"{exc}: pin left")
        return Bump(variant=variant, tool=tool.name, source=tool.source, current=tool.version, status="error",
                    detail=str(exc), unreachable=exc.unreachable)


def selected_tools(variants: VariantSet, only: Iterable[str], groups: dict[str, list[str]],
                   group: str | None, clients: Iterable[Tool] = ()) -> list[tuple[str, Tool]]:
    """(variant, tool) for every tool the variant files pin (and the factory's clients, under
    CLIENTS), narrowed by --only and --group."""
    wanted = set(only)
    if group is not None:
        if group not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise FactoryError(f"bump.groups has no group '{group}' (groups: {known})")
        wanted |= set(groups[group])
    pinned = [(v.name, t) for v in variants for t in v.own_tools] + [(CLIENTS, t) for t in clients]
    unknown = wanted - {t.name for _, t in pinned}
    if unknown:
        raise FactoryError(f"no variant pins a tool named {', '.join(sorted(unknown))}")
    return [(v, t) for v, t in pinned if not wanted or t.name in wanted]


def check_all(settings: Settings, chosen: list[tuple[str, Tool]], now: dt.datetime) -> list[Bump]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda pair: check_tool(pair[1], pair[0], settings, now), chosen))


# --- writing the variant files ------------------------------------------------------

def _round_trip() -> YAML:
    yaml = YAML()  # round-trip: comments, key order, flow style and quotes survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def edited_text(path: Path, bumps: list[Bump], key: str = "tools") -> str:
    """PATH's text with each bump's version (and url, sha256) written into its entry under KEY
    (a variant file's `tools`, the factory's `clients`)."""
    yaml = _round_trip()
    document = yaml.load(path.read_text(encoding="utf-8"))
    entries = {entry.get("name"): entry for entry in document.get(key) or []}
    for bump in bumps:
        entry = entries.get(bump.tool)
        if entry is None:
            raise FactoryError(f"{path}: {key}: no entry named '{bump.tool}' to bump")
        entry["version"] = type(entry["version"])(bump.target) if isinstance(entry["version"], str) else bump.target
        if bump.url:
            entry["url"] = bump.url
        if bump.sha256:
            entry["sha256"] = bump.sha256
        for arch, (url, sha256) in bump.archives.items():
            entry["archives"][arch]["url"] = url
            entry["archives"][arch]["sha256"] = sha256
    out = StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def with_feature_minor_raised(text: str) -> str:
    """A config file's TEXT with `feature.version` X.Y.Z moved to X.(Y+1).0."""
    yaml = _round_trip()
    document = yaml.load(text)
    major, minor, _ = (int(part) for part in str(document["feature"]["version"]).split("."))
    document["feature"]["version"] = f"{major}.{minor + 1}.0"
    out = StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def moves_feature(bumps: list[Bump], feature: FeatureConfig | None) -> bool:
    """Whether a moving bump is one of the agents Feature's tools (its agents, its Node)."""
    return feature is not None and any(
        b.moves and b.variant == feature.variant and b.tool in (*feature.tools, *feature.node) for b in bumps)


def apply(variants: VariantSet, bumps: list[Bump], clients_file: Path | None = None,
          feature: tuple[Path, FeatureConfig] | None = None) -> tuple[list[Path], Callable[[], None]]:
    """Write the moving bumps into their variant files (a client's into CLIENTS_FILE, the
    config file declaring `clients`), and raise the minor of the agents Feature's version
    in FEATURE's file when one of its tools moves; returns the files and an undo."""
    by_file: dict[Path, list[Bump]] = {}
    for bump in bumps:
        if bump.moves:
            if bump.variant == CLIENTS and clients_file is None:
                raise FactoryError(f"no config file declares the client '{bump.tool}'")
            path = clients_file if bump.variant == CLIENTS and clients_file else variants[bump.variant].path
            by_file.setdefault(path, []).append(bump)
    texts = {path: edited_text(path, items, "clients" if path == clients_file else "tools")
             for path, items in by_file.items()}
    if feature is not None and moves_feature(bumps, feature[1]):
        path = feature[0]
        texts[path] = with_feature_minor_raised(texts.get(path) or path.read_text(encoding="utf-8"))
    return list(texts), project_files.write_together(texts)
