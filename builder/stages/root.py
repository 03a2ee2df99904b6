"""The root OS image, made without a pull: a minimal Debian root per platform from
Debian's packages (mmdebstrap), turned into FROM-scratch images and joined into one
multi-arch index in the registry.

Root file systems are cached under the state folder, keyed by everything that
shapes them, and written under a temporary name first so an interrupted
bootstrap never leaves an entry a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.engine import buildx, oci, state
from builder.engine import commands as tools
from builder.model.config import RootBootstrap, Settings, arch_of
from builder.model.errors import FactoryError
from builder.model.graph import RootImage

# Left out of every root (and of later apt installs, since dpkg keeps the rule):
# documentation nobody reads in an agent container. Copyright files stay.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
)
MMDEBSTRAP_VARIANT = "minbase"

ROOT_DOCKERFILE = """\
FROM scratch
ADD rootfs.tar /
CMD ["bash"]
"""


@dataclass(frozen=True)
class RootfsTar:
    arch: str
    path: Path
    cached: bool


def cache_key(boot: RootBootstrap, arch: str) -> str:
    identity = {
        "suite": boot.suite, "arch": arch, "mirror": boot.mirror,
        "packages": sorted(boot.packages), "variant": MMDEBSTRAP_VARIANT,
        "dpkg": list(DPKG_OPTIONS),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def root_repository(settings: Settings, registry: str) -> str:
    cfg = settings.config
    return f"{registry}/{cfg.namespace}/{cfg.image}-{cfg.root.bootstrap.repository}"


def make_rootfs(boot: RootBootstrap, arch: str, cache_dir: Path, log_path: Path) -> RootfsTar:
    """Return the cached root tarball for (suite, arch, packages, mirror), making it if needed."""
    final = cache_dir / f"{boot.suite}-{arch}-{cache_key(boot, arch)}.tar"
    if final.is_file():
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
            result = tools.run(argv, check=False, log=log, env={"SOURCE_DATE_EPOCH": "0"})
        if result.returncode != 0:
            raise FactoryError(
                f"mmdebstrap failed for {boot.suite}/{arch} (exit {result.returncode}); "
                f"log {log_path} ends:\n{tools.log_tail(log_path)}"
            )
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return RootfsTar(arch, final, cached=False)


def _build_platform_image(
    tar: RootfsTar, platform: str, repository: str, suite: str, logs: Path,
) -> str:
    context = tar.path.parent / f"context-{tar.path.stem}"
    context.mkdir(exist_ok=True)
    target = context / "rootfs.tar"
    if not target.exists():
        os.link(tar.path, target)
    (context / "Dockerfile").write_text(ROOT_DOCKERFILE)
    outcome = buildx.buildx_build(
        context=context, dockerfile=context / "Dockerfile", platform=platform,
        tags=[f"{repository}:{suite}-{tar.arch}"], log_path=logs / f"root-{tar.arch}.log",
        labels={"org.opencontainers.image.title": f"Debian {suite} root ({tar.arch})"},
    )
    return f"{repository}@{outcome.digest}"


def bootstrap(
    settings: Settings,
    registry: str,
    platforms: list[str] | None = None,
    report: Callable[[str], None] = lambda _msg: None,
) -> RootImage:
    """Make (or reuse) the root for each platform and push one multi-arch index."""
    boot = settings.config.root.bootstrap
    chosen = platforms or list(settings.config.platforms)
    tools.require("mmdebstrap")
    tools.ensure_docker()
    cache_dir = state.subdir("cache", "rootfs")
    logs = state.subdir("logs")
    with state.exclusive("rootfs"):
        def one(platform: str) -> RootfsTar:
            arch = arch_of(platform)
            report(f"root {boot.suite}/{arch}: preparing root file system")
            tar = make_rootfs(boot, arch, cache_dir, logs / f"mmdebstrap-{arch}.log")
            size = tar.path.stat().st_size // 2**20
            report(f"root {boot.suite}/{arch}: {'cached' if tar.cached else 'made'} ({size} MiB)")
            return tar

        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            tars = dict(zip(chosen, pool.map(one, chosen), strict=True))
        repository = root_repository(settings, registry)
        sources = {p: _build_platform_image(tars[p], p, repository, boot.suite, logs) for p in chosen}
        tag = f"{repository}:{boot.suite}"
        # a run for some platforms keeps the others the shared tag already holds: never shrink it
        current = oci.lookup(tag)
        if current is not None:
            for platform, digest in oci.inspect(tag).platforms.items():
                sources.setdefault(platform, f"{repository}@{digest}")
        index = oci.join_index(tag, [sources[p] for p in sorted(sources)])
    missing = set(chosen) - set(index.platforms)
    if missing:
        raise FactoryError(f"root index {index.reference} lacks {', '.join(sorted(missing))}")
    return RootImage(reference=index.reference, digest=index.digest, platforms=index.platforms)


def clear_cache() -> int:
    """Remove cached root file systems; returns how many entries went."""
    cache_dir = state.subdir("cache", "rootfs")
    count = sum(1 for p in cache_dir.glob("*.tar"))
    shutil.rmtree(cache_dir)
    return count


def resolve_root(
    settings: Settings, registry: str, platforms: list[str],
    report: Callable[[str], None] = lambda _msg: None, locked: dict[str, Any] | None = None,
) -> RootImage:
    """The root image the variants build on, by digest: bootstrapped here, or an ordinary
    reference at the digest the lock pins (resolved now only when there is no lock)."""
    root = settings.config.root
    if root.source == "bootstrap":
        return bootstrap(settings, registry, platforms, report)
    assert root.reference is not None  # the config model guarantees it
    if locked and locked.get("reference") == root.reference and locked.get("index"):
        pinned = f"{root.reference.split('@')[0]}@{locked['index']}"
        info = oci.inspect(pinned)  # fails, naming it, if the pinned digest is gone
        return RootImage(reference=root.reference, digest=info.digest, platforms=info.platforms)
    info = oci.inspect(root.reference)
    missing = [p for p in platforms if p not in info.platforms]
    if missing:
        raise FactoryError(f"root image {root.reference} has no image for {', '.join(missing)}")
    return RootImage(reference=root.reference, digest=info.digest, platforms=info.platforms)


def root_reference(settings: Settings, registry: str) -> str:
    """The root image's tag (bootstrap) or reference, before it is pinned."""
    root = settings.config.root
    if root.source == "bootstrap":
        return f"{root_repository(settings, registry)}:{root.bootstrap.suite}"
    if root.reference is None:
        raise FactoryError("root.source is 'reference' but root.reference is not set")
    return root.reference
