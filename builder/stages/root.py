"""The root OS image, made without a pull and the same bytes on every machine: a
minimal Debian root per platform from Debian's packages (mmdebstrap, with a fixed
SOURCE_DATE_EPOCH), with the factory's own files (`model.root_tree`) in place of the
build host's hostname and resolv.conf, written as a one-layer OCI image by
`engine.ocilayout` (no BuildKit: its configs carry the build time) and pushed as it is.

Each platform's root is tagged by its inputs (`<suite>-<arch>-<key>`), so a machine
that finds that tag, or the digest the lock pins, runs no mmdebstrap at all. The
multi-arch index is joined only where every platform meets (a run for all of
them, or `merge`), never by a runner holding one.

Root file systems and their written images are cached under the state folder,
keyed by everything that shapes them, and written under a temporary name first so
an interrupted bootstrap never leaves an entry a later run would trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.engine import commands as tools
from builder.engine import oci, ocilayout, state
from builder.model.config import RootBootstrap, Settings, arch_of
from builder.model.errors import FactoryError
from builder.model.graph import RootImage, RootPins, package_moves
from builder.model.lockfile import Lock
from builder.model.root_tree import FOLDERS, TreeFile, root_tree, tree_digest

# Left out of every root (and of later apt installs, since dpkg keeps the rule):
# documentation nobody reads in an agent container, and the translations of
# programs' messages (the images run in en_US.UTF-8, whose messages are built in;
# 72 MB in base). Copyright files and glibc's locale aliases stay.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/vim/vim*/lang/*",
)
MMDEBSTRAP_VARIANT = "minbase"
SOURCE_DATE_EPOCH = "0"
ROOT_FORMAT = 2
"""The shape of the written image (config, compression); part of every root's key, so a
root written by an older tool is never found under a newer key."""
KEY_LABEL = "io.headjack.images.root-key"
"""The input key inside each root's config: a tag holding an image without it, or with
another key, was not written from these inputs and is not trusted."""

Report = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class RootfsTar:
    arch: str
    path: Path
    cached: bool


@dataclass(frozen=True)
class RootInputs:
    """What shapes a bootstrapped root image: the bootstrap's settings and the factory's tree."""

    boot: RootBootstrap
    tree: tuple[TreeFile, ...]

    @classmethod
    def of(cls, settings: Settings) -> RootInputs:
        return cls(settings.config.root.bootstrap, root_tree(settings.templates_dir))

    def key(self, arch: str) -> str:
        """The image's key: its file system's and its tree's (a helper's edit moves the
        image, not the cached file system, so no bootstrap runs again for it)."""
        both = f"{cache_key(self.boot, arch)} {tree_digest(self.tree)}"
        return hashlib.sha256(both.encode()).hexdigest()[:16]


def cache_key(boot: RootBootstrap, arch: str) -> str:
    """The root file system's key (the tarball mmdebstrap writes)."""
    identity = {
        "suite": boot.suite, "arch": arch, "mirror": boot.mirror,
        "packages": sorted(boot.packages), "variant": MMDEBSTRAP_VARIANT,
        "dpkg": list(DPKG_OPTIONS), "epoch": SOURCE_DATE_EPOCH,
        "format": ROOT_FORMAT, "gzip": ocilayout.GZIP_LEVEL,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def root_repository(settings: Settings, registry: str) -> str:
    cfg = settings.config
    return f"{registry}/{cfg.namespace}/{cfg.image}-{cfg.root.bootstrap.repository}"


def key_tag(repository: str, inputs: RootInputs, arch: str) -> str:
    """Where a platform's root is found by its inputs."""
    return f"{repository}:{inputs.boot.suite}-{arch}-{inputs.key(arch)}"


def make_rootfs(
    boot: RootBootstrap, arch: str, cache_dir: Path, log_path: Path, *, fresh: bool = False,
) -> RootfsTar:
    """Return the cached root tarball for (suite, arch, packages, mirror), making it if
    needed (FRESH: always, replacing the cached one)."""
    final = cache_dir / f"{boot.suite}-{arch}-{cache_key(boot, arch)}.tar"
    if final.is_file() and not fresh:
        return RootfsTar(arch, final, cached=True)
    partial = final.with_name(f"{final.stem}.partial-{os.getpid()}.tar")
    argv = [
        "mmdebstrap", "--format=tar", f"--variant={MMDEBSTRAP_VARIANT}", f"--architectures={arch}",
        *(f"--dpkgopt={opt}" for opt in DPKG_OPTIONS),
        "--aptopt=Acquire::Languages \"none\"",
    ]
    if boot.packages:
        argv.append("--include=" + ",".join(sorted(boot.packages)))
    argv += [boot.suite, str(partial), boot.mirror]
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            result = tools.run(argv, check=False, log=log, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        if result.returncode != 0:
            raise FactoryError(
                f"mmdebstrap failed for {boot.suite}/{arch} (exit {result.returncode}); "
                f"log {log_path} ends:\n{tools.log_tail(log_path)}"
            )
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return RootfsTar(arch, final, cached=False)


def packages_in(tar: Path) -> dict[str, str]:
    """Installed Debian packages (name -> version) from the root file system's dpkg status."""
    with tarfile.open(tar) as archive:
        member = next((m for m in archive if m.name.lstrip("./") == "var/lib/dpkg/status"), None)
        handle = archive.extractfile(member) if member else None
        text = handle.read().decode("utf-8", "replace") if handle else ""
    packages: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = fields.get("Version", "")
    return packages


def _relative(name: str) -> str:
    return name.removeprefix("./").rstrip("/")


def with_tree(source: Path, tree: tuple[TreeFile, ...], out: Path) -> None:
    """Write OUT: SOURCE's members less those the tree replaces, then the tree's folders and
    files, root's, at the epoch like the rest (SOURCE_DATE_EPOCH)."""
    replaced = {item.path for item in tree} | set(FOLDERS)
    epoch = int(SOURCE_DATE_EPOCH)
    with tarfile.open(source) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if _relative(member.name) not in replaced:
                dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        for folder in FOLDERS:
            info = tarfile.TarInfo(f"./{folder}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            dst.addfile(info)
        for item in tree:
            info = tarfile.TarInfo(f"./{item.path}")
            info.size, info.mode, info.mtime = len(item.data), item.mode, epoch
            dst.addfile(info, io.BytesIO(item.data))


def write_root_image(tar: RootfsTar, inputs: RootInputs) -> ocilayout.LayoutImage:
    """The root's OCI layout beside its tarball, under the image's key: reused while the
    tarball is the cached one."""
    boot, key = inputs.boot, inputs.key(tar.arch)
    layout = tar.path.with_name(f"{boot.suite}-{tar.arch}-{key}.oci")
    if tar.cached and (found := ocilayout.read_image(layout)) is not None:
        return found
    with tempfile.TemporaryDirectory(prefix=".with-tree-", dir=tar.path.parent) as tmp:
        merged = Path(tmp) / "rootfs.tar"
        with_tree(tar.path, inputs.tree, merged)
        return ocilayout.write_image(
            merged, layout, arch=tar.arch, cmd=["bash"],
            labels={"org.opencontainers.image.title": f"Debian {boot.suite} root ({tar.arch})", KEY_LABEL: key},
            created_by=f"ADD rootfs.tar / # mmdebstrap --variant={MMDEBSTRAP_VARIANT} {boot.suite} {tar.arch}",
        )


def _trusted(tag: str, key: str, report: Report) -> str | None:
    """The digest under the input tag, when the image there is a root written from these
    inputs: one layer, the fixed creation time, and the same input key (the key alone is
    not enough: every image built on a root inherits its labels)."""
    digest = oci.lookup(tag)
    if digest is None:
        return None
    config = json.loads(oci.config_of(f"{oci.repository_of(tag)}@{digest}"))  # by the digest read
    labels = (config.get("config") or {}).get("Labels") or {}
    layers = (config.get("rootfs") or {}).get("diff_ids") or []
    found = labels.get(KEY_LABEL)
    if found != key or len(layers) != 1 or config.get("created") != ocilayout.EPOCH:
        report(f"root {tag} was not written from these inputs ({KEY_LABEL} {found or 'absent'}, "
               f"expected {key}; {len(layers)} layer(s), created {config.get('created')}): "
               "not trusted, making it here")
        return None
    return digest


def _locate(repository: str, inputs: RootInputs, platform: str, pinned: str | None, report: Report) -> str | None:
    """This platform's root in the registry, without making anything: the lock's digest
    when it pins one, else what the input tag holds (when it was written from these inputs)."""
    if pinned:
        return pinned if oci.lookup(f"{repository}@{pinned}") is not None else None
    arch = arch_of(platform)
    return _trusted(key_tag(repository, inputs, arch), inputs.key(arch), report)


def _moved(platform: str, made: str, pinned: str, packages: dict[str, str], pins: RootPins) -> str:
    cause = package_moves(pins.packages.get(platform, {}), packages) or "the lock records no packages"
    return f"root {platform} is {made}, the lock pins {pinned}: {cause}"


REPIN = "run `hjk-images lock --update --only root` and commit the lock"


class RootDrift(FactoryError):
    """A build would stand on a root the lock doesn't pin."""


def _platform_root(
    settings: Settings, inputs: RootInputs, registry: str, platform: str, pins: RootPins | None, report: Report,
    drift: list[str] | None = None,
) -> str:
    """This platform's root digest in the registry: found there, or made here and pushed. A
    root other than the lock's pin is refused, unless DRIFT is given to collect it in."""
    boot = inputs.boot
    arch = arch_of(platform)
    repository = root_repository(settings, registry)
    pinned = pins.images.get(platform) if pins else None
    found = _locate(repository, inputs, platform, pinned, report)
    if found is not None:
        report(f"root {boot.suite}/{arch}: in the registry ({found}), nothing to make")
        return found
    tools.require("mmdebstrap")
    report(f"root {boot.suite}/{arch}: preparing root file system")
    tar = make_rootfs(boot, arch, state.subdir("cache", "rootfs"), state.subdir("logs") / f"mmdebstrap-{arch}.log")
    image = write_root_image(tar, inputs)
    moved = _moved(platform, image.digest, pinned, packages_in(tar.path), pins) \
        if pins and pinned and pinned != image.digest else None
    if moved and drift is None:  # refused before anything is pushed
        raise RootDrift(f"{moved}; a build stands only on the pinned root: {REPIN}, or pass --allow-root-drift")
    tag = key_tag(repository, inputs, arch)
    pushed = oci.push_layout(image.path, ocilayout.REF_NAME, tag)
    if pushed != image.digest:
        raise FactoryError(f"the registry stored {tag} as {pushed}, not as the {image.digest} written here")
    size = tar.path.stat().st_size // 2**20
    report(f"root {boot.suite}/{arch}: {'cached' if tar.cached else 'made'} ({size} MiB), pushed {image.digest}")
    if moved and drift is not None:
        drift.append(moved)
        report(f"{moved}; built on it anyway (--allow-root-drift); {REPIN} to pin it")
    return image.digest


def pin_problems(settings: Settings, registry: str, pins: RootPins | None) -> list[str]:
    """The lock's bootstrapped-root pins against what REGISTRY holds under each platform's
    input tag (read once, by tag): one line per platform that differs or can't be compared."""
    inputs = RootInputs.of(settings)
    repository = root_repository(settings, registry)
    problems = []
    for platform in settings.config.platforms:
        tag = key_tag(repository, inputs, arch_of(platform))
        pinned = pins.images.get(platform) if pins else None
        held = oci.lookup(tag)
        if pinned is None:
            problems.append(f"root {platform}: the lock pins no digest; {REPIN}")
        elif held is None:
            problems.append(f"root {platform}: {registry} holds no root to compare the pin with ({tag}); "
                            "run `hjk-images root bootstrap` there, or check the inputs alone with --offline")
        elif held != pinned:
            problems.append(f"root {platform}: the lock pins {pinned}, {tag} holds {held}")
    return problems


def bootstrap(
    settings: Settings, registry: str, platforms: list[str] | None = None,
    report: Report = _quiet, pins: RootPins | None = None, *, allow_drift: bool = False,
) -> RootImage:
    """Find or make each platform's root in the registry; join the index when this run
    holds every platform the factory builds for. A root the lock doesn't pin is refused
    (ALLOW_DRIFT: made, pushed and named in the returned image's `drift`)."""
    boot = settings.config.root.bootstrap
    chosen = platforms or list(settings.config.platforms)
    tools.ensure_docker()
    drift: list[str] | None = [] if allow_drift else None
    with state.exclusive("rootfs"), ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        inputs = RootInputs.of(settings)

        def one(platform: str) -> str:
            return _platform_root(settings, inputs, registry, platform, pins, report, drift)

        digests = dict(zip(chosen, pool.map(one, chosen), strict=True))
    tag = f"{root_repository(settings, registry)}:{boot.suite}"
    joined = join_root_index(tag, digests) if set(settings.config.platforms) <= set(chosen) else ""
    return RootImage(reference=tag, digest=joined, platforms=digests, bootstrapped=True,
                     drift=tuple(sorted(drift or ())))


def join_root_index(reference: str, platforms: dict[str, str]) -> str:
    """Join per-platform roots into the root's index (a run holding every platform, or
    `merge` for runners that each held one); fails naming a platform the index lacks."""
    repository = oci.repository_of(reference)
    index = tools.retry_transient(
        lambda: oci.join_index(reference, [f"{repository}@{platforms[p]}" for p in sorted(platforms)]))
    missing = set(platforms) - set(index.platforms)
    if missing:
        raise FactoryError(f"root index {index.reference} lacks {', '.join(sorted(missing))}")
    return index.digest


def make_pins(settings: Settings, *, fresh: bool, report: Report = _quiet) -> RootPins:
    """Each platform's root digest and packages, made here without a registry (FRESH: from
    the archive as it is now, replacing the cached file systems)."""
    inputs = RootInputs.of(settings)
    boot = inputs.boot
    tools.require("mmdebstrap")

    def one(platform: str) -> tuple[str, str, dict[str, str]]:
        arch = arch_of(platform)
        report(f"root {boot.suite}/{arch}: {'making from the archive' if fresh else 'preparing'}")
        tar = make_rootfs(boot, arch, state.subdir("cache", "rootfs"),
                          state.subdir("logs") / f"mmdebstrap-{arch}.log", fresh=fresh)
        return platform, write_root_image(tar, inputs).digest, packages_in(tar.path)

    platforms = list(settings.config.platforms)
    with state.exclusive("rootfs"), ThreadPoolExecutor(max_workers=len(platforms)) as pool:
        made = list(pool.map(one, platforms))
    return RootPins(images={p: d for p, d, _ in made}, packages={p: pk for p, _, pk in made})


def check(
    settings: Settings, registry: str, platforms: list[str] | None = None,
    report: Report = _quiet, pins: RootPins | None = None,
) -> list[str]:
    """Make each platform's root from scratch in a temporary folder, ignoring every cache,
    and compare it with the registry's; one problem per platform that differs."""
    inputs = RootInputs.of(settings)
    boot = inputs.boot
    chosen = platforms or list(settings.config.platforms)
    repository = root_repository(settings, registry)
    tools.require("mmdebstrap")
    logs = state.subdir("logs")

    def one(platform: str) -> str | None:
        arch = arch_of(platform)
        with tempfile.TemporaryDirectory(prefix=f"hjk-root-check-{arch}-") as tmp:
            tar = make_rootfs(boot, arch, Path(tmp), logs / f"mmdebstrap-check-{arch}.log", fresh=True)
            made = write_root_image(tar, inputs).digest
            packages = packages_in(tar.path)
        tag = key_tag(repository, inputs, arch)
        held = oci.lookup(tag)
        if pins and (pinned := pins.images.get(platform)) and pinned != made:
            report(_moved(platform, made, pinned, packages, pins))
        if held is None:
            return f"{platform}: made {made} from scratch, but the registry has no {tag} to compare with"
        if held != made:
            return f"{platform}: made {made} from scratch, the registry's {tag} is {held}"
        report(f"root {boot.suite}/{arch}: made from scratch, same as the registry's ({made})")
        return None

    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        return [problem for problem in pool.map(one, chosen) if problem]


def clear_cache() -> int:
    """Remove cached root file systems; returns how many entries went."""
    cache_dir = state.subdir("cache", "rootfs")
    count = sum(1 for p in cache_dir.glob("*.tar"))
    shutil.rmtree(cache_dir)
    return count


def find_roots(
    settings: Settings, registry: str, platforms: list[str], pins: RootPins | None = None,
) -> dict[str, str]:
    """Per platform, the root digest a build would use, as far as the registry knows now
    (nothing is made): for a plan's prediction."""
    root = settings.config.root
    if root.source == "reference":
        assert root.reference is not None
        digest = oci.lookup(root.reference)  # then read by that digest: the tag may move meanwhile
        return oci.inspect(f"{oci.repository_of(root.reference)}@{digest}").platforms if digest else {}
    repository = root_repository(settings, registry)
    inputs = RootInputs.of(settings)
    found = {p: _locate(repository, inputs, p, pins.images.get(p) if pins else None, _quiet)
             for p in platforms}
    return {p: d for p, d in found.items() if d}


def resolve_root(
    settings: Settings, registry: str, platforms: list[str], report: Report = _quiet,
    locked: Lock | None = None, pins: RootPins | None = None, *, allow_drift: bool = False,
) -> RootImage:
    """The root image the variants build on, by digest: bootstrapped (or found) here, or an
    ordinary reference at the digest the lock pins (resolved now only when there is no lock)."""
    root = settings.config.root
    if root.source == "bootstrap":
        return bootstrap(settings, registry, platforms, report, pins, allow_drift=allow_drift)
    assert root.reference is not None  # the config model guarantees it
    pinned = locked.root.pinned_reference(root.reference) if locked else None
    if pinned:
        info = oci.inspect(pinned)  # fails, naming it, if the pinned digest is gone
        return RootImage(reference=root.reference, digest=info.digest, platforms=info.platforms)
    info = oci.inspect(root.reference)
    missing = [p for p in platforms if p not in info.platforms]
    if missing:
        raise FactoryError(f"root image {root.reference} has no image for {', '.join(missing)}")
    return RootImage(reference=root.reference, digest=info.digest, platforms=info.platforms)
