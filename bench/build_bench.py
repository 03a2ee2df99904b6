"""Build benchmark: our pipeline against a `docker buildx bake` baseline.

Measures, on the same variants and a registry of its own:
  cold   `hjk-images build --no-cache` vs. bake with --no-cache, one bake call
         per level of the graph (a child needs its parent's digest; this engine
         has no named build contexts), the bake file generated from the same
         rendered Dockerfiles;
  noop   a second `build` with nothing changed (target: under 5 s);
  leaf   `build` after a change to dind alone (target: only dind rebuilt);
  sizes  compressed image size per variant and platform.
Prints a table and, with --json, the figures as JSON. Not run by the tests.

    .venv/bin/python bench/build_bench.py [--platform linux/amd64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
HJK = str(Path(sys.executable).parent / "hjk-images")

sys.path.insert(0, str(PROJECT))
from builder.engine import registry as registries  # noqa: E402
from builder.model.config import arch_of, load_settings  # noqa: E402
from builder.model.records import BuildRecord, load  # noqa: E402
from builder.project import variants_of  # noqa: E402
from builder.stages.plan import repository  # noqa: E402
from builder.stages.render import render_all  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, env={**os.environ, **(env or {})}, cwd=PROJECT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def hjk_build(registry: str, record: Path, platforms: list[str], *extra: str, config: Path | None = None) -> float:
    argv = [HJK, *(["--config", str(config)] if config else []), "build", "--registry", registry,
            "--record", str(record), *extra]
    for platform in platforms:
        argv += ["--platform", platform]
    return timed(argv)


def bake_cold(registry: str, platforms: list[str], root_record: BuildRecord, workdir: Path) -> float:
    """Bake baseline: one bake call per graph level, each child FROM its parent's pushed digest."""
    settings = load_settings(project_dir=PROJECT)
    variants = list(variants_of(settings))
    rendered = render_all(variants, settings)
    contexts = {name: r.write(workdir / "bake" / name).parent for name, r in rendered.items()}
    repo = repository(settings, registry)
    root_repo = root_record.root.reference.split("@")[0].rsplit(":", 1)[0]
    digests: dict[str, str] = {}
    total = 0.0
    secret: list[str] = []
    extra = Path("/usr/local/share/ca-certificates")
    if extra.is_dir() and any(extra.rglob("*.crt")):
        ca = workdir / "ca.pem"
        ca.write_text("".join(p.read_text() for p in sorted(extra.rglob("*.crt"))))
        secret = [f"id=extra_ca,src={ca}"]
    for level in sorted({len(v.lineage) for v in variants}):
        targets = {}
        for v in (v for v in variants if len(v.lineage) == level):
            for platform in platforms:
                parent = (f"{root_repo}@{root_record.root.platforms[platform]}" if v.parent == "root"
                          else f"{repo}@{digests[f'{v.parent}-{arch_of(platform)}']}")
                targets[f"{v.name}-{arch_of(platform)}"] = {
                    "context": str(contexts[v.name]), "dockerfile": "Dockerfile", "platforms": [platform],
                    "args": {"BASE_IMAGE": parent}, "tags": [f"{repo}:bake-{v.name}-{arch_of(platform)}"],
                    "output": ["type=registry"], "no-cache": True, "secret": secret,
                }
        bake_file = workdir / f"bake-level{level}.json"
        bake_file.write_text(json.dumps({"group": {"default": {"targets": list(targets)}}, "target": targets}))
        metadata = workdir / f"bake-level{level}.metadata.json"
        total += timed(["docker", "buildx", "bake", "-f", str(bake_file), "--provenance=false",
                        "--metadata-file", str(metadata)])
        meta = json.loads(metadata.read_text())
        digests.update({name: data["containerimage.digest"] for name, data in meta.items()})
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", dest="platforms",
                        help="Limit to a platform (repeatable). Default: both.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    platforms = args.platforms or ["linux/amd64", "linux/arm64"]

    workdir = Path(tempfile.mkdtemp(prefix="hjk-bench-"))
    reg = registries.EmbeddedRegistry(free_port(), workdir / "registry")
    reg.up()
    figures: dict[str, object] = {"platforms": platforms}
    try:
        address = reg.address
        subprocess.run([HJK, "root", "bootstrap", "--registry", address], check=True, cwd=PROJECT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cold = workdir / "cold.json"
        figures["cold_hjk_s"] = round(hjk_build(address, cold, platforms, "--no-cache"), 1)
        record = load(cold, BuildRecord)
        figures["cold_bake_s"] = round(bake_cold(address, platforms, record, workdir), 1)
        figures["noop_s"] = round(hjk_build(address, workdir / "noop.json", platforms), 2)
        noop = load(workdir / "noop.json", BuildRecord)
        figures["noop_reused"] = all(b.status == "reused" for b in noop.builds)

        fork = workdir / "fork"
        shutil.copytree(PROJECT / "variants", fork / "variants")
        (fork / "variants" / "bench.j2").write_text("RUN echo leaf-change > /etc/hjk-bench\n")
        dind = fork / "variants" / "dind.yaml"
        dind.write_text(dind.read_text() + "fragments:\n  root: [bench.j2]\n")
        overlay = fork / "overlay.yaml"
        overlay.write_text("variants_dir: variants\n")
        figures["leaf_s"] = round(hjk_build(address, workdir / "leaf.json", platforms, config=overlay), 1)
        leaf = load(workdir / "leaf.json", BuildRecord)
        figures["leaf_rebuilt"] = sorted(b.key for b in leaf.builds if b.status == "built")
        figures["sizes_mb"] = {b.key: round((b.size_bytes or 0) / 1e6, 1) for b in record.builds}
    finally:
        reg.down()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("cold build, hjk-images (s)", figures["cold_hjk_s"]), ("cold build, bake (s)", figures["cold_bake_s"]),
        ("no-op rebuild (s)", figures["noop_s"]), ("no-op reused everything", figures["noop_reused"]),
        ("one-leaf change (s)", figures["leaf_s"]), ("rebuilt after leaf change", figures["leaf_rebuilt"]),
    ]
    rows += [(f"size {key} (MB)", size) for key, size in figures["sizes_mb"].items()]  # type: ignore[attr-defined]
    report(rows, figures, args.json)
    return 0


def report(rows: list[tuple[str, object]], figures: dict[str, object], json_path: Path | None) -> None:
    """The figures as an aligned table, then as one JSON line (and into JSON_PATH when given)."""
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
