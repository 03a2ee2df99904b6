"""Pull-cost benchmark: what an agent bump costs a user to pull, on the real variants.

Against a registry of its own, in a fork of the variant files (one platform):
  release 1   base, systemd and dind with one agent pinned a release back;
  release 2   the bump: that agent at today's pin, released again;
  no-cache    `build --no-cache` of release 2's inputs, nothing changed.
Reports, per variant, the compressed bytes a user who has release 1 pulls for release 2
(from the release record's pull_costs) against the bumped agent's own layer (goal: at
most that layer plus 5 %); the bytes a user of release 2 pulls for the no-cache rebuild
(goal: 0); each layer's compressed size before and after; and the two release times.
Prints a table and, with --json, the figures as JSON. Not run by the tests.

    .venv/bin/python bench/pull_cost_bench.py [--agent claude] [--older VERSION] [--platform linux/amd64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
HJK = str(Path(sys.executable).parent / "hjk-images")

sys.path.insert(0, str(PROJECT))
from bench.build_bench import free_port, report  # noqa: E402
from builder.engine import oci, releases  # noqa: E402
from builder.engine import registry as registries  # noqa: E402
from builder.model.records import BuildRecord, ReleaseRecord, load  # noqa: E402
from builder.stages.publish import pull_costs  # noqa: E402

VARIANTS = ("base", "systemd", "dind")


def hjk(fork: Path, state: Path, *argv: str) -> float:
    """Run hjk-images on the fork; its output goes to a log beside the state folder."""
    env = {**os.environ, "HJK_STATE_DIR": str(state), "HJK_PROJECT_DIR": str(PROJECT),
           "PATH": f"{PROJECT / '.tools' / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    log = state.parent / "bench.log"
    start = time.monotonic()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ hjk-images {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run([HJK, "--config", str(fork / "overlay.yaml"), *argv], cwd=fork, env=env,
                              stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"hjk-images {' '.join(argv)} failed (exit {proc.returncode}): see {log}")
    return time.monotonic() - start


def pin(fork: Path, agent: str, version: str) -> None:
    """Pin AGENT to VERSION in the fork's base.yaml, as a bump would."""
    path = fork / "variants" / "base.yaml"
    text = path.read_text(encoding="utf-8")
    pattern = _tool_key(agent, "version")
    if not pattern.search(text):
        raise SystemExit(f"{path}: no pin of {agent}")
    path.write_text(pattern.sub(rf"\g<1>{version}", text, count=1), encoding="utf-8")


def current_pin(agent: str, key: str = "version") -> str:
    """AGENT's KEY (version, package) in base.yaml."""
    text = (PROJECT / "variants" / "base.yaml").read_text(encoding="utf-8")
    found = _tool_key(agent, key).search(text)
    if not found:
        raise SystemExit(f"variants/base.yaml: no {key} for {agent}")
    return found[2].strip('"')


def _tool_key(agent: str, key: str) -> re.Pattern[str]:
    """AGENT's KEY line in base.yaml: group 1 up to the value, group 2 the value."""
    return re.compile(rf"(  - name: {agent}\n(?:    .*\n)*?    {key}: )(\S+)")


def release_before(package: str, version: str) -> str:
    """The stable npm release of PACKAGE published last before VERSION."""
    offered = {r.version: r for r in releases.npm(package).releases if r.published and not r.withdrawn}
    pinned = offered[version].published
    assert pinned is not None
    earlier = [r for r in offered.values() if "-" not in r.version and r.published and r.published < pinned]
    if not earlier:
        raise SystemExit(f"npm has no release of {package} before {version}")
    return max(earlier, key=lambda r: r.published or pinned).version


def agent_layer(reference: str, agent: str, version: str) -> tuple[str, int]:
    """The layer (digest, compressed bytes) of REFERENCE's image whose step installs AGENT at VERSION."""
    config = json.loads(oci.config_of(reference))
    steps = [h for h in config["history"] if not h.get("empty_layer")]
    layers = oci.layers_of(reference)
    for step, layer in zip(steps, layers, strict=True):
        said = step.get("created_by", "")
        if agent in said and f"@{version}" in said:
            return layer
    raise SystemExit(f"no layer of {reference} names {agent} in its history")


def platform_image(release: ReleaseRecord, variant: str, platform: str) -> str:
    published = next(v for v in release.variants if v.variant == variant)
    return f"{published.repository}@{published.platforms[platform]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="claude", help="The agent to bump (default: claude, released most often).")
    parser.add_argument("--older", help="The release of it to start from (default: npm's release before the pin).")
    parser.add_argument("--platform", default="linux/amd64")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    newer = current_pin(args.agent)
    args.older = args.older or release_before(current_pin(args.agent, "package"), newer)

    workdir = Path(tempfile.mkdtemp(prefix="hjk-pull-bench-"))
    state = workdir / "state"
    state.mkdir()
    shared_cache = Path(os.environ.get("HJK_STATE_DIR", Path.home() / ".local/state/headjack-images")) / "cache"
    if shared_cache.is_dir():  # the root file systems made before: minutes on each run otherwise
        (state / "cache").symlink_to(shared_cache)
    fork = workdir / "fork"
    shutil.copytree(PROJECT / "variants", fork / "variants")
    shutil.copy(PROJECT / "images.lock.yaml", fork / "images.lock.yaml")
    # a namespace of its own; two releases of one commit, so no immutable sha tag
    (fork / "overlay.yaml").write_text("variants_dir: variants\nnamespace: pullbench\ntags:\n  sha: null\n")
    reg = registries.EmbeddedRegistry(free_port(), workdir / "registry")
    reg.up()
    records = state / "records"
    release = ["release", "--registry", reg.address, "--platform", args.platform,
               *(a for v in VARIANTS for a in ("--variant", v))]
    figures: dict[str, object] = {"platform": args.platform, "agent": args.agent, "from": args.older, "to": newer}
    try:
        pin(fork, args.agent, args.older)
        hjk(fork, state, "lock")
        figures["release_1_s"] = round(hjk(fork, state, *release), 1)
        first = load(records / "release.json", ReleaseRecord)
        pin(fork, args.agent, newer)
        # as `bump` does: the agents Feature's default moved, so its version's minor rises
        with open(fork / "overlay.yaml", "a", encoding="utf-8") as overlay:
            overlay.write("feature:\n  version: 1.1.0\n")
        hjk(fork, state, "lock")
        figures["release_2_s"] = round(hjk(fork, state, *release), 1)
        second = load(records / "release.json", ReleaseRecord)
        costs = {c.variant: c for c in second.pull_costs if c.platform == args.platform}
        old_base, new_base = (platform_image(r, "base", args.platform) for r in (first, second))
        _, bumped_bytes = agent_layer(new_base, args.agent, newer)
        figures["bumped_layer_bytes"] = bumped_bytes
        figures["pull_after_bump"] = {v: costs[v].bytes_to_pull if v in costs else 0 for v in VARIANTS}
        figures["layers_before"] = [size for _, size in oci.layers_of(old_base)]
        figures["layers_after"] = [size for _, size in oci.layers_of(new_base)]
        figures["layers_changed"] = [i for i, (a, b) in enumerate(zip(oci.layers_of(old_base),
                                                                      oci.layers_of(new_base), strict=False))
                                     if a[0] != b[0]]

        rebuilt = state / "nocache.json"
        figures["no_cache_build_s"] = round(hjk(fork, state, "build", "--no-cache", "--registry", reg.address,
                                                "--platform", args.platform, "--record", str(rebuilt),
                                                *(a for v in VARIANTS for a in ("--variant", v))), 1)
        again = load(rebuilt, BuildRecord)
        rebuilt_index = f"{again.repository}@{again.variant('base').digest}"
        rebuilt_base = f"{again.repository}@{oci.inspect(rebuilt_index).platforms[args.platform]}"
        pairs = zip(oci.layers_of(new_base), oci.layers_of(rebuilt_base), strict=False)
        figures["layers_moved_by_no_cache"] = [i for i, (a, b) in enumerate(pairs) if a[0] != b[0]]
        figures["pull_after_no_cache"] = {
            v.variant: sum(d.bytes_to_pull for d in pull_costs(v.variant, f"{v.repository}@{v.index_digest}",
                                                                f"{again.repository}@{again.variant(v.variant).digest}")
                           if d.platform == args.platform)
            for v in second.variants}
    finally:
        reg.down()
    shutil.rmtree(workdir, ignore_errors=True)

    mb = 1e6
    pulled = figures["pull_after_bump"]
    assert isinstance(pulled, dict)
    rows: list[tuple[str, object]] = [
        (f"{args.agent} {args.older} -> {newer}: its layer (MB)", round(bumped_bytes / mb, 1)),
        *((f"pull after the bump, {v} (MB; goal <= {bumped_bytes * 1.05 / mb:.1f})", round(pulled[v] / mb, 1))
          for v in VARIANTS),
        *((f"pull after --no-cache, nothing changed, {v} (MB; goal 0)",
           round(figures["pull_after_no_cache"][v] / mb, 1)) for v in VARIANTS),  # type: ignore[index]
        ("release 1 (s)", figures["release_1_s"]), ("release 2, after the bump (s)", figures["release_2_s"]),
        ("no-cache build (s)", figures["no_cache_build_s"]),
        ("base layers that moved (index)", figures["layers_changed"]),
        ("base layers a --no-cache rebuild moved (index)", figures["layers_moved_by_no_cache"]),
    ]
    report(rows, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
